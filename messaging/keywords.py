"""Recognise STOP / START / HELP replies (docs/compliance.md, "Keywords").

The rule, so a coordinator can predict it:

1. The text is normalised: Unicode-compatibility folded (full-width letters), accents removed
   (ARRÊT -> arret), case-folded, apostrophes dropped (don't -> dont), every other
   non-letter/digit (punctuation, emoji) turned into a space, spaces collapsed.
2. It is a keyword when the WHOLE text is one keyword phrase, optionally surrounded by filler
   words (please, now, thanks, me, all, it, anymore, ok...). So "Stop.", "stop!", "STOP please",
   "please stop", "Stop it" and "opt-out" are STOP, while "I can't stop smoking", "don't stop"
   and "when does it end" are not: a keyword inside a longer sentence is conversation.
3. STOP phrases: the per-se words of the FCC rule, Twilio's defaults and the AWS list (STOP,
   STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT / OPT OUT / OPT-OUT, REMOVE, ARRET,
   TD) and, in the spirit of the FCC's "reasonable person" standard, short explicit requests:
   "stop texting me", "stop sending messages", "no more texts", "don't text me", "do not
   contact me", "take me off the list", "remove me", "unsubscribe me", "opt me out", "leave me
   alone", "wrong number". STOP wins over everything and is honoured in an open text survey.
   ("I quit" is deliberately not a phrase: in a smoking-cessation study it is good news.)
4. START: START, UNSTOP (always). YES counts as START only when no text survey is open for
   the participant (`survey_open=False`), because "yes" is a common survey answer. Callers
   should act on a START only for an opted-out participant; for anyone else it is conversation.
5. HELP: HELP, INFO, "I need help".

Anything else returns None and belongs in the participant's conversation.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum


class Keyword(StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"


# Words that may surround a keyword without changing its meaning.
FILLER = (
    "please",
    "pls",
    "plz",
    "now",
    "right now",
    "immediately",
    "asap",
    "thanks",
    "thank you",
    "thx",
    "ty",
    "ok",
    "okay",
    "sorry",
    "just",
    "me",
    "us",
    "it",
    "this",
    "all",
    "anymore",
    "any more",
    "again",
    "ever",
    "for good",
    "already",
    "seriously",
)

STOP_WORDS = (
    "stop",
    "stopall",
    "stop all",
    "unsubscribe",
    "cancel",
    "end",
    "quit",
    "revoke",
    "optout",
    "opt out",
    "remove",
    "arret",
    "td",
)
START_WORDS = ("start", "unstop")
SOFT_START_WORDS = ("yes",)
HELP_WORDS = ("help", "info")

_OBJECT = (
    r"(?:texts?|texting|txts?|txting|messages?|messaging|msgs?|sms|contacting|"
    r"reminders?|notifications?)"
)
STOP_PHRASES = (
    # stop texting me / stop sending (me) messages / quit the reminders / end all texts
    rf"(?:stop|quit|cease|end) (?:(?:sending|sending me|the|these|those|your|all|all the) )?"
    rf"{_OBJECT}",
    # don't text me / do not contact me / never message me
    r"(?:dont|do not|never) (?:text|txt|message|msg|sms|contact|send) (?:me|us|this number)"
    r"(?: (?:texts?|messages?))?",
    rf"no more {_OBJECT}",
    r"(?:take|remove) me (?:off|from)(?: (?:the|your|this))?"
    r"(?: (?:list|texting list|text list|study list|texts|messages))?",
    r"remove me",
    r"unsubscribe me",
    r"opt me out",
    r"i (?:want|would like|wish) to (?:opt out|optout|unsubscribe|stop)",
    r"leave me alone",
    r"wrong (?:number|person)",
)
HELP_PHRASES = (r"(?:i )?need (?:some )?help",)

MAX_TOKENS = 12


def _alternation(items: tuple[str, ...], *, literal: bool) -> str:
    return "|".join(re.escape(item) if literal else item for item in items)


def _family(words: tuple[str, ...], phrases: tuple[str, ...] = ()) -> re.Pattern[str]:
    core = _alternation(words, literal=True)
    if phrases:
        core += "|" + _alternation(phrases, literal=False)
    filler = _alternation(FILLER, literal=True)
    return re.compile(rf"^(?:(?:{filler}) )*(?:{core})(?: (?:{filler}))*$")


_STOP = _family(STOP_WORDS, STOP_PHRASES)
_START = _family(START_WORDS)
_SOFT_START = _family(SOFT_START_WORDS)
_HELP = _family(HELP_WORDS, HELP_PHRASES)


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "")
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = re.sub(r"['’‘`´]", "", text.casefold())
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


def classify(text: str, *, survey_open: bool = False) -> Keyword | None:
    """STOP, START or HELP when the whole reply is such a keyword (see the module doc)."""
    normal = normalise(text)
    if not normal or normal.count(" ") >= MAX_TOKENS:
        return None
    if _STOP.match(normal):
        return Keyword.STOP
    if _START.match(normal) or (not survey_open and _SOFT_START.match(normal)):
        return Keyword.START
    if _HELP.match(normal):
        return Keyword.HELP
    return None


# Sentences that read like a wish to stop without being a keyword sentence ("I don't want these
# anymore, who is this"): the team's inbox flags them "possible opt-out, please review"
# (docs/compliance.md, "The inbox"). A flag asks a person to look; it never opts anyone out.
_STOPISH = re.compile(
    r"\b(?:"
    r"stop (?:it|this|these|that|them|sending|texting|messaging|contacting|now|please)|"
    r"please stop|unsubscribe|opt ?out|optout|remove me|take me off|leave me alone|wrong number|"
    r"who is this|who are you|how did you get (?:my|this) number|"
    r"(?:dont|do not|no longer) (?:want|need|wish)|"
    r"no more|not interested|quit (?:texting|sending|messaging)|"
    r"(?:dont|do not|never) (?:text|txt|message|contact|send)|"
    r"harass|spam|reported you|block(?:ing)? (?:you|this)"
    r")\b"
)


def sounds_like_stop(text: str) -> bool:
    """A reply that is not a keyword (classify is None) but may ask to stop: a person reviews
    it. Keyword sentences are acted on instead and never flagged."""
    if classify(text) is not None:
        return False
    return bool(_STOPISH.search(normalise(text)))
