"""Quantities ("15 minutes", "4KB", "two hours", "ten read replicas") in one base unit per kind.

An exam scenario states what it needs ("files of 2 to 10 MB", "a job of about two hours") and
the notes state limits ("up to 4 KB", "max 15 minutes"); comparing the two in seconds, bytes or
things counted is how the explainer finds the actual reason an option fails (or fits). Units
are plain SI time and data sizes, and counts are matched by the stem of the counted noun, so
this knows nothing about any one subject.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.text import CEILING, FLOOR, LIMIT, STOP, stem

# Number words as numbers ("fifteen" = 15); not "one", which is mostly a pronoun ("one of").
NUMBER_WORDS = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "ninety": 90, "hundred": 100, "thousand": 1000, "twice": 2, "double": 2,
}
_SECOND, _BYTE = "time", "size"
_UNITS: dict[str, tuple[str, float]] = {
    "ms": (_SECOND, 0.001), "millisecond": (_SECOND, 0.001), "s": (_SECOND, 1.0),
    "sec": (_SECOND, 1.0), "second": (_SECOND, 1.0), "min": (_SECOND, 60.0),
    "minute": (_SECOND, 60.0), "h": (_SECOND, 3600.0), "hr": (_SECOND, 3600.0),
    "hour": (_SECOND, 3600.0), "day": (_SECOND, 86400.0), "week": (_SECOND, 604800.0),
    "month": (_SECOND, 2629800.0), "year": (_SECOND, 31557600.0),
    "kb": (_BYTE, 1e3), "mb": (_BYTE, 1e6), "gb": (_BYTE, 1e9), "tb": (_BYTE, 1e12),
    "pb": (_BYTE, 1e15), "kib": (_BYTE, 1024.0), "mib": (_BYTE, 1024.0 ** 2),
    "gib": (_BYTE, 1024.0 ** 3), "tib": (_BYTE, 1024.0 ** 4), "bytes": (_BYTE, 1.0),
}
_PLURAL = {"milliseconds", "seconds", "secs", "mins", "minutes", "hours", "hrs", "days",
           "weeks", "months", "years"}
_QUANTITY = re.compile(
    r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?|one|" + "|".join(NUMBER_WORDS) + r")"
    r"(?:\s*-\s*|\s*)(" + "|".join(sorted({*_UNITS, *_PLURAL}, key=len, reverse=True))
    + r")\b", re.IGNORECASE)
# Words for a query that looks for an option's limits of one kind.
LIMIT_WORDS = {_SECOND: "maximum time limit seconds minutes hours",
               _BYTE: "maximum size limit KB MB GB"}


def limit_query(kind: str) -> str:
    """Words that find the stated limits of one kind ("up to 5 Read Replicas")."""
    return LIMIT_WORDS.get(kind) or f"up to maximum limit {kind.partition(':')[2]}"


@dataclass(frozen=True)
class Quantity:
    value: float
    kind: str  # "time", "size" or "count:<noun stem>"
    base: float  # in seconds, bytes or things
    text: str  # as written


def _unit(word: str) -> tuple[str, float] | None:
    word = word.lower()
    if word in _UNITS:
        return _UNITS[word]
    if word in _PLURAL:
        single = {"secs": "sec", "mins": "min", "hrs": "hr"}.get(word, word[:-1])
        return _UNITS[single]
    return None


_COUNT = re.compile(
    r"(?<![\w.$])(\d{1,3}(?:,\d{3})+|\d+|" + "|".join(NUMBER_WORDS) + r")"
    r"((?:\s+[A-Za-z][\w-]*){1,2})", re.IGNORECASE)


def _number(word: str) -> float:
    word = word.lower()
    return float({"one": 1, **NUMBER_WORDS}.get(word) or word.replace(",", ""))


def quantities(text: str) -> list[Quantity]:
    """Every time span and data size in ``text``, and counts of things ("ten read replicas",
    "up to 5 Read Replicas": kind "count:replica", the stem of the counted noun)."""
    out, spans = [], []
    for m in _QUANTITY.finditer(text):
        number, unit = m.group(1).lower(), _unit(m.group(2))
        if unit is None or (m.group(2) in ("s", "h") and not number[0].isdigit()):
            continue
        value = _number(number)
        out.append(Quantity(value, unit[0], value * unit[1], m.group(0)))
        spans.append(m.start())
    for m in _COUNT.finditer(text):
        words = m.group(2).split()
        words = words[:next((k for k, w in enumerate(words) if w.lower() in STOP), len(words))]
        if m.start() in spans or not words or _unit(words[0]):
            continue
        noun = stem(words[-1].lower())
        value = _number(m.group(1))
        out.append(Quantity(value, f"count:{noun}", value,
                            f"{m.group(1)} {' '.join(words)}"))
    return out


@dataclass(frozen=True)
class Bound:
    """A bound a note line states, checked against a quantity the question needs."""

    needed: Quantity
    bound: Quantity
    floor: bool  # a minimum, else a maximum
    broken: bool  # the need is above the maximum (or below the minimum)

    def describe(self) -> str:
        """Both figures in words: "the question needs two hours, and your notes give a limit
        of 15 minutes" (broken) or "... which is within the limit of 6 hours" (kept)."""
        which = "a minimum of" if self.floor else "a limit of"
        if self.broken:
            return f"the question needs {self.needed.text}, and your notes give {which} " \
                   f"{self.bound.text}"
        where = "above the minimum of" if self.floor else "within the limit of"
        return f"the question needs {self.needed.text}, {where} {self.bound.text} in your notes"


def check_bound(needed: list[Quantity], line: str) -> Bound | None:
    """The first bound ``line`` states ("up to 4 KB", "max 15 minutes", "works on data larger
    than 4KB") on a quantity of the kind one of ``needed`` is, and whether the need breaks
    it; a broken bound comes first."""
    if not needed or not LIMIT.search(line):
        return None
    floor = bool(FLOOR.search(line)) and not CEILING.search(line)
    found = [Bound(need, bound, floor, need.base < bound.base if floor
                   else need.base > bound.base)
             for bound in quantities(line) for need in needed if need.kind == bound.kind]
    return max(found, key=lambda b: b.broken, default=None)


# Whether, and what kind of, figure a question asks for, from its question words and units
# (English question words only: nothing here knows a subject).
_ASKS_FIGURE = re.compile(
    r"\b(how (many|much|long|big|large|often|fast|small)|limit|size|max(imum)?|min(imum)?|"
    r"duration|cost|price|range|rate|capacity|ttl|timeout|number of|value|percent)\b",
    re.IGNORECASE)
_ASKS_TIME = re.compile(
    r"\b(how long|how often|how quickly|how soon|how many (?:milli)?(?:seconds|minutes|hours|"
    r"days|weeks|months|years)|duration|timeout|ttl|retention|retain|expire|expiry|lifetime|"
    r"latency)\b", re.IGNORECASE)
_ASKS_SIZE = re.compile(
    r"\b(how (?:big|large|small)|size|biggest|largest|smallest|how much (?:data|storage|memory|"
    r"disk|space|ram)|capacity|kb|mb|gb|tb)\b", re.IGNORECASE)
_ASKS_COUNT = re.compile(r"\bhow many\b", re.IGNORECASE)
_BARE_NUMBER = re.compile(r"\b\d+\b")


def asks_figure(question: str) -> bool:
    """A question about a quantity: a line with a number is more likely its answer."""
    return bool(_ASKS_FIGURE.search(question))


def asked_kinds(question: str) -> set[str]:
    """The kinds of figure a question asks for: "time", "size", "count" (how many things)."""
    kinds = set()
    if _ASKS_TIME.search(question):
        kinds.add(_SECOND)
    if _ASKS_SIZE.search(question):
        kinds.add(_BYTE)
    if _ASKS_COUNT.search(question) and _SECOND not in kinds:
        kinds.add("count")
    return kinds


# A question that asks for a figure in so many words, not one that only names a thing whose
# value is a figure ("What format must the TTL attribute use?").
_ASKS_HOW = re.compile(
    r"\bhow (?:long|many|much|big|large|small|often|soon|quickly|fast)\b"
    r"|\b(?:biggest|largest|smallest|longest|shortest|maximum|minimum|max|min)\b",
    re.IGNORECASE)


def demanded_kinds(question: str) -> set[str]:
    """The kinds of figure a question explicitly asks for ("how long", "the biggest"): the
    answer must state one (abstention); :func:`asked_kinds` is the looser hint for ranking."""
    return asked_kinds(question) if _ASKS_HOW.search(question) else set()


def gives_kind(text: str, kinds: set[str]) -> bool:
    """Whether a line states a figure of one of these kinds (a count: any whole number)."""
    if not kinds:
        return False
    found = {q.kind.partition(":")[0] for q in quantities(text)}
    return bool(found & kinds) or "count" in kinds and bool(_BARE_NUMBER.search(text))
