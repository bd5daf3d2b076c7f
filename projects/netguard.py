"""Where the portal may send a REDCap token: public https servers, or networks named in settings.

Two checks (docs/compliance.md, "Outbound calls"):

1. `check_redcap_url`, when an administrator saves an instance and again whenever a client is
   built: https only, port 443 only, no user name or password, and a host that is not an
   address inside this machine or the institution's network (loopback, private, link-local
   and cloud metadata, multicast, reserved), however it is written: 127.0.0.1, [::1],
   2130706433 (decimal), 0x7f000001 (hex), 0177.0.0.1 (octal), 127.1 (short form).
2. `GuardedBackend`, at request time: the host name is resolved here, every address it resolves
   to is checked by the same rule, and the connection goes to the address that was checked (so a
   name that resolves inward, or changes its answer between check and connect, is refused).
   TLS still verifies the certificate against the host name.

Exceptions, both explicit settings: REDCAP_INTERNAL_NETWORKS (CIDRs of an institution's
internal REDCap; still https on 443) and REDCAP_ALLOW_LOOPBACK_HTTP (development only: the
built-in REDCap sandbox at http://127.0.0.1:<port>/; no process starts with it and DEBUG off).
Redirects are never followed (projects/redcap.py).
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedAddress(httpcore.ConnectError):
    """The host resolved to an address the portal does not send REDCap tokens to."""


def _internal_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [
        ipaddress.ip_network(n.strip(), strict=False)
        for n in settings.REDCAP_INTERNAL_NETWORKS
        if n.strip()
    ]


def _normalise(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def address_refusal(ip: IPAddress, *, loopback_ok: bool) -> str | None:
    """Why the portal will not connect to `ip` (None: it may)."""
    ip = _normalise(ip)
    if any(ip in network for network in _internal_networks()):
        return None
    if ip.is_loopback:
        return None if loopback_ok else "it is this machine (a loopback address)"
    if ip.is_link_local:
        return "it is a link-local address (cloud metadata services live there)"
    if ip.is_private or ip.is_reserved or ip.is_unspecified or ip.is_multicast:
        return "it is an address inside a private network"
    if not ip.is_global:
        return "it is not a public internet address"
    return None


def _literal_ip(host: str) -> IPAddress | None:
    """The host as an IP address if it is written as one, in any form a resolver accepts."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        packed = socket.inet_aton(host)  # 2130706433, 0x7f000001, 0177.0.0.1, 127.1 ...
    except OSError:
        return None
    return ipaddress.IPv4Address(packed)


def loopback_http_allowed() -> bool:
    return bool(getattr(settings, "REDCAP_ALLOW_LOOPBACK_HTTP", False))


def check_redcap_url(url: str) -> str:
    """Return `url` if the portal may send a REDCap token there; raise ValueError (with a
    message for an administrator) if not. The path and form rules are redcap.validate_api_url's."""
    parts = urlsplit(url or "")
    host = (parts.hostname or "").rstrip(".").lower()
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError("The REDCap API URL has a port that is not a number.") from exc
    literal = _literal_ip(host)
    if literal is not None and str(literal) != host.strip("[]") and ":" not in host:
        raise ValueError(
            f"The REDCap API URL gives its server as “{host}”, an IP address written as a "
            "number in an unusual form (decimal, hexadecimal, octal or shortened). Use the "
            "server's name, such as https://redcap.example.edu/api/."
        )
    loopback = (
        host in LOOPBACK_NAMES
        or host.endswith(".localhost")
        or (literal is not None and _normalise(literal).is_loopback)
    )
    dev_loopback = loopback and loopback_http_allowed()
    if parts.scheme != "https" and not dev_loopback:
        raise ValueError(
            "The REDCap API URL must use https, so that the API token is never sent in clear text."
        )
    if port not in (None, 443) and not dev_loopback:
        raise ValueError(
            "The REDCap API URL must use the standard https port (443); other ports are "
            "refused. Remove the “:port” part."
        )
    if loopback and not dev_loopback:
        raise ValueError(
            "The REDCap API URL points at this machine (localhost). StudyText sends REDCap "
            "tokens only to a REDCap server on the network."
        )
    if literal is not None:
        reason = address_refusal(literal, loopback_ok=dev_loopback)
        if reason:
            raise ValueError(
                f"The REDCap API URL's server {host} is refused: {reason}. If your institution's "
                "REDCap is on an internal network, ask the operators to list that network in "
                "REDCAP_INTERNAL_NETWORKS."
            )
    return url


def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (a seam the tests replace to stand in for DNS)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


class GuardedBackend(httpcore.SyncBackend):
    """Connects only to addresses that pass `address_refusal`, and to exactly those."""

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        literal = _literal_ip(host)
        addresses = [str(literal)] if literal is not None else resolve(host, port)
        loopback_ok = loopback_http_allowed()
        checked = []
        for address in addresses:
            reason = address_refusal(ipaddress.ip_address(address), loopback_ok=loopback_ok)
            if reason:
                raise BlockedAddress(
                    f"{host} resolves to {address}, and {reason}; StudyText does not send "
                    "REDCap tokens there."
                )
            checked.append(address)
        if not checked:
            raise httpcore.ConnectError(f"{host} resolves to no address.")
        return super().connect_tcp(checked[0], port, timeout, local_address, socket_options)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One certificate-verifying TLS context for every REDCap client of the process. Building
    one reads the whole CA bundle (~20 ms of CPU, holding the interpreter lock); each call made
    its own before. A context is safe to share between threads and connections."""
    return httpx.create_ssl_context()


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport, connecting through GuardedBackend."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("verify", tls_context())
        super().__init__(**kwargs)
        self._pool._network_backend = GuardedBackend()  # httpcore's documented hook


def guarded_client(**kwargs) -> httpx.Client:
    return httpx.Client(transport=GuardedTransport(), follow_redirects=False, **kwargs)
