"""Quantities with a unit ("15 minutes", "4KB", "two hours"), in one base unit per kind.

An exam scenario states what it needs ("files of 2 to 10 MB", "a job of about two hours") and
the notes state limits ("up to 4 KB", "max 15 minutes"); comparing the two in seconds or bytes
is how the explainer finds the actual reason an option fails. Units are plain SI time and data
sizes, so this knows nothing about any one subject.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.text import LIMIT

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
# Bounds from below: "at least 30 days", "a minimum of 3 AZs"; any other limit word bounds
# from above ("up to", "max", "no more than", "cannot exceed").
_FLOOR = re.compile(r"\b(?:at least|min(?:imum|imal)?|more than|no (?:less|fewer) than)\b",
                    re.IGNORECASE)
# Words for a query that looks for an option's limits of one kind.
LIMIT_WORDS = {_SECOND: "maximum time limit seconds minutes hours",
               _BYTE: "maximum size limit KB MB GB"}


@dataclass(frozen=True)
class Quantity:
    value: float
    kind: str  # "time" or "size"
    base: float  # in seconds or bytes
    text: str  # as written


def _unit(word: str) -> tuple[str, float] | None:
    word = word.lower()
    if word in _UNITS:
        return _UNITS[word]
    if word in _PLURAL:
        single = {"secs": "sec", "mins": "min", "hrs": "hr"}.get(word, word[:-1])
        return _UNITS[single]
    return None


def quantities(text: str) -> list[Quantity]:
    """Every time span and data size in ``text``."""
    out = []
    for m in _QUANTITY.finditer(text):
        number, unit = m.group(1).lower(), _unit(m.group(2))
        if unit is None or (m.group(2) in ("s", "h") and not number[0].isdigit()):
            continue
        value = float({"one": 1, **NUMBER_WORDS}.get(number) or number.replace(",", ""))
        out.append(Quantity(value, unit[0], value * unit[1], m.group(0)))
    return out


@dataclass(frozen=True)
class Conflict:
    """A stated bound of the notes that a quantity the question needs does not fit."""

    needed: Quantity
    bound: Quantity
    floor: bool  # a minimum (the need is below it), else a maximum (the need is above it)

    def describe(self) -> str:
        which = "a minimum of" if self.floor else "a limit of"
        return f"the question needs {self.needed.text}, and your notes give {which} " \
               f"{self.bound.text}"


def conflict(needed: list[Quantity], line: str) -> Conflict | None:
    """The first bound ``line`` states ("up to 4 KB", "max 15 minutes") that one of the
    ``needed`` quantities of the same kind exceeds (or, for a minimum, falls short of)."""
    if not needed or not LIMIT.search(line):
        return None
    floor = bool(_FLOOR.search(line)) and not re.search(
        r"\b(?:up to|at most|max(?:imum)?|no more than|exceed\w*)\b", line, re.IGNORECASE)
    for bound in quantities(line):
        for need in needed:
            if need.kind == bound.kind and (need.base < bound.base if floor
                                            else need.base > bound.base):
                return Conflict(need, bound, floor)
    return None
