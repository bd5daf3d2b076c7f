"""Write a development .env with freshly generated secrets, unless one exists.

Run by `make run` before Django starts (so it cannot use Django settings itself).
"""

import base64
import secrets
import sys
from pathlib import Path

TEMPLATE = """\
# Written by `make run` on first start. Every variable is described in .env.example.
DJANGO_DEBUG=true
DJANGO_SECRET_KEY={secret_key}
SECRETS_ENCRYPTION_KEYS={fernet_key}
SECRETS_FINGERPRINT_KEY={fingerprint_key}
SANDBOX_ENABLED=true
REDCAP_ALLOW_LOOPBACK_HTTP=true
SMS_GATEWAY_OVERRIDE=
DEMO_PASSWORD={demo_password}
SITE_URL=http://127.0.0.1:8000
"""


def main(path: str = ".env") -> int:
    target = Path(path)
    if target.exists():
        print(f"{target} exists; keeping it.")
        return 0
    target.write_text(
        TEMPLATE.format(
            secret_key=secrets.token_urlsafe(50),
            fernet_key=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            fingerprint_key=secrets.token_urlsafe(32),
            demo_password=secrets.token_urlsafe(9),
        )
    )
    target.chmod(0o600)
    print(f"Wrote {target} with freshly generated secrets.")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
