"""The extractive answerer: the note sentences that answer the question, each with [n].

No model writes anything here, so every sentence is the student's own words (a nested bullet
gets its parent bullet as a lead-in so it reads on its own). It is the fallback for every
generator and must be good on its own.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from rag.retrieval import Hit

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-/.@]*[A-Za-z0-9]|[A-Za-z0-9]")
_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z(`*_])")
_MARKUP = re.compile(r"(\*\*|__|`|\*|(?<!\w)_|_(?!\w))")
_BULLET = re.compile(r"^(\s*)(?:[-*+]|\d+[.)])\s+")
STOP = set(
    "a an the and or of to in on for with by is are was were be been being it its this that "
    "these those what which who whom whose when where why how do does did can could should "
    "would will shall may might must i you he she we they them my your our their me us about "
    "as at from into than then there here so if not no yes any some all each more most other "
    "such only own same too very just also get gets use used using between vs versus tell "
    "explain describe difference differ aws amazon".split()
)


@dataclass
class Unit:
    """One candidate answer sentence, tied to its passage and original line."""

    text: str
    hit_index: int
    line: int
    lexical: float = 0.0
    score: float = 0.0


def content_terms(text: str) -> list[str]:
    return [w for w in (t.lower() for t in _WORD.findall(text)) if w not in STOP]


def _stem(word: str) -> str:
    for suffix in ("ing", "ies", "es", "s", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def strip_markup(text: str) -> str:
    return " ".join(_MARKUP.sub("", text).split())


def split_units(hit: Hit, hit_index: int, max_chars: int = 400) -> list[Unit]:
    """Lines of a passage (long lines split into sentences), nested bullets given context."""
    units: list[Unit] = []
    parents: list[tuple[int, str]] = []
    for offset, raw in enumerate(hit.chunk.text.split("\n")):
        line_no = hit.chunk.start_line + offset
        if not raw.strip() or raw.lstrip().startswith("#") or raw.strip() in ("---", "***"):
            continue
        match = _BULLET.match(raw)
        indent = len(match.group(1)) if match else -1
        body = strip_markup(raw[match.end():] if match else raw.strip().lstrip(">").strip())
        if not body:
            continue
        parents = [(i, t) for i, t in parents if i < indent] if match else []
        lead = parents[-1][1] if parents else ""
        if match:
            parents.append((indent, body))
        for sentence in _SENT_SPLIT.split(body) if len(body) > max_chars else [body]:
            sentence = sentence.strip()
            if len(sentence) < 12 or len(content_terms(sentence)) < 2:
                continue
            if lead and len(sentence) < 120 and not sentence.lower().startswith(lead.lower()):
                sentence = f"{lead.rstrip(':')}: {sentence}"
            units.append(Unit(sentence, hit_index, line_no))
    return units


def lexical_scores(question: str, units: list[Unit]) -> None:
    """IDF-weighted share of the question's content terms found in each unit."""
    q_terms = {_stem(t) for t in content_terms(question)}
    if not q_terms or not units:
        return
    unit_terms = [{_stem(t) for t in content_terms(u.text)} for u in units]
    df = {t: sum(t in terms for terms in unit_terms) for t in q_terms}
    idf = {t: math.log(1 + len(units) / (1 + df[t])) for t in q_terms}
    total = sum(idf.values()) or 1.0
    for unit, terms in zip(units, unit_terms):
        unit.lexical = sum(idf[t] for t in q_terms if t in terms) / total


@dataclass
class Extract:
    """The chosen sentences, with the hit index each cites."""

    sentences: list[tuple[str, int, int]]  # (text, hit index, line)
    best: float
    coverage: float


def _finish(text: str) -> str:
    text = text.strip().rstrip(":;,")
    return text if text.endswith((".", "!", "?", ")")) else text + "."


def select_sentences(question: str, qvec: np.ndarray, hits: list[Hit], embedder,
                     max_sentences: int = 3, max_passages: int = 4) -> Extract:
    """Pick the best-supported sentences: lexical overlap, semantic re-score, diversity."""
    units: list[Unit] = []
    for i, hit in enumerate(hits[:max_passages]):
        units.extend(split_units(hit, i))
    if not units:
        return Extract([], 0.0, 0.0)
    lexical_scores(question, units)
    for u in units:
        u.score = u.lexical + 0.5 * hits[u.hit_index].dense - 0.03 * u.hit_index
    shortlist = sorted(units, key=lambda u: u.score, reverse=True)[:14]
    vectors = embedder.encode([u.text for u in shortlist])
    sims = vectors @ qvec
    for u, sim in zip(shortlist, sims):
        u.score = 0.55 * float(sim) + 0.45 * u.lexical - 0.02 * u.hit_index
    shortlist.sort(key=lambda u: u.score, reverse=True)
    best = shortlist[0].score
    chosen: list[tuple[Unit, np.ndarray]] = []
    for u, vec in sorted(zip(shortlist, vectors), key=lambda p: p[0].score, reverse=True):
        if len(chosen) == max_sentences or u.score < best - 0.15:
            break
        if any(float(vec @ v) > 0.85 for _, v in chosen):
            continue
        chosen.append((u, vec))
    coverage = max(u.lexical for u in units)
    return Extract([( _finish(u.text), u.hit_index, u.line) for u, _ in chosen], best, coverage)
