"""Count SMS segments the way Twilio and handsets do (docs/sms-encoding.md).

One non-GSM-7 character switches the whole text to UCS-2, which costs more than twice the
segments: a single curly apostrophe can turn a 1-segment reminder into a 3-segment one, and
billing and provider throughput are both per segment.

`characters` is what the handset counts against the segment size: septets for GSM-7 (an
extension character such as `€` or `[` counts 2) and UTF-16 code units for UCS-2 (an emoji or
other astral character counts 2). It is not `len(text)`, which counts code points.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# Twilio's UnicodeToGSM table: 127 basic characters (ESC is the 128th code). Note the traps:
# upper-case Ç is here but lower-case ç is not; á í ó ú â ê and the backtick are not either.
GSM7_BASIC = frozenset(
    "\n\r !\"#$%&'()*+,-./0123456789:;<=>?@"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
    "¡£¤¥§¿ÄÅÆÉÑÖØÜßàäåæÇèéìñòöøùüΓΔΘΛΞΠΣΦΨΩ"
)
# Sent as ESC + character, so each takes two septets.
GSM7_EXTENSION = frozenset("\f[\\]^{|}~€")

SINGLE = {GSM7: 160, UCS2: 70}
CONCATENATED = {GSM7: 153, UCS2: 67}  # the 6-octet UDH takes the rest of each part

# Twilio refuses longer bodies (error 21617).
MAX_BODY_CHARACTERS = 1600


@dataclass(frozen=True)
class SegmentCount:
    encoding: str  # "GSM-7" or "UCS-2"
    segments: int  # 0 for an empty text
    characters: int  # septets (GSM-7) or UTF-16 code units (UCS-2), as the handset counts
    units_per_segment: int  # 160/153 for GSM-7, 70/67 for UCS-2, depending on `segments`
    remaining: int  # units still free in the last segment before another one is needed
    ucs2_chars: tuple[str, ...] = ()  # distinct characters that forced UCS-2, in order seen

    @property
    def first_ucs2_char(self) -> str | None:
        return self.ucs2_chars[0] if self.ucs2_chars else None

    @property
    def is_unicode(self) -> bool:
        return self.encoding == UCS2


def _unit_cost(char: str, encoding: str) -> int:
    if encoding == GSM7:
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1  # a surrogate pair


def is_gsm7(char: str) -> bool:
    return char in GSM7_BASIC or char in GSM7_EXTENSION


def count(text: str) -> SegmentCount:
    """Encoding, segments and handset character count of `text`."""
    non_gsm: dict[str, None] = {}
    if GSM7_BASIC.issuperset(text):
        # The usual case, every character one septet: no walk over the characters (the sender
        # counts every text it prepares).
        encoding, costs, total = GSM7, None, len(text)
    else:
        for char in text:
            if not is_gsm7(char):
                non_gsm.setdefault(char)
        encoding = UCS2 if non_gsm else GSM7
        costs = [_unit_cost(char, encoding) for char in text]
        total = sum(costs)

    if total == 0:
        segments, per_segment, used_in_last = 0, SINGLE[encoding], 0
    elif total <= SINGLE[encoding]:
        segments, per_segment, used_in_last = 1, SINGLE[encoding], total
    elif costs is None:  # one unit each: whole parts, the rest in the last
        per_segment = CONCATENATED[encoding]
        segments = -(-total // per_segment)
        used_in_last = total - (segments - 1) * per_segment
    else:
        # Fill parts greedily; a character that does not fit whole starts the next part, so a
        # 2-septet extension character or a surrogate pair is never split across segments.
        per_segment = CONCATENATED[encoding]
        segments, used_in_last = 1, 0
        for cost in costs:
            if used_in_last + cost > per_segment:
                segments += 1
                used_in_last = 0
            used_in_last += cost
    return SegmentCount(
        encoding=encoding,
        segments=segments,
        characters=total,
        units_per_segment=per_segment,
        remaining=per_segment - used_in_last,
        ucs2_chars=tuple(non_gsm),
    )
