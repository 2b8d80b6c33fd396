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
from rag.text import content_terms, stem

_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z(`*_])")
_MARKUP = re.compile(r"(\*\*|__|`|\*|(?<!\w)_|_(?!\w))")
_BULLET = re.compile(r"^(\s*)(?:[-*+]|\d+[.)])\s+")
_RESTATES = re.compile(r"^(prompt|question|scenario|q)\s*:|\?\s*$", re.IGNORECASE)
# Text addressed to an AI assistant (prompt injection planted in notes) is never a fact.
_INSTRUCTION = re.compile(
    r"\b(ignore|disregard|forget) (all |any |the )?(previous|prior|above|earlier|your)\b"
    r"|^\W*(system|assistant)\s*:|\b(system|hidden) prompt|\breveal (your|the) \w* ?prompt"
    r"|\b(reply|respond|answer|say) (only|with only|just)\b|\byou are now\b"
    r"|\bnew instructions?\b|\bas an ai\b|\binstead of answering\b"
    r"|\b(assistant|ai|model|chatbot|llm)('s)? (instruction|directive|note)s?\b", re.IGNORECASE)
_LABEL = re.compile(r"^(solution|answer)\s*:\s*", re.IGNORECASE)


@dataclass
class Unit:
    """One candidate answer sentence, tied to its passage and original line."""

    text: str
    hit_index: int
    line: int
    lexical: float = 0.0
    score: float = 0.0
    lead: str = ""


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
        if not body or _RESTATES.search(body) or _INSTRUCTION.search(body):
            continue  # prompts restate the problem, instructions to a model are not facts
        body = _LABEL.sub("", body)
        parents = [(i, t) for i, t in parents if i < indent] if match else []
        lead = ": ".join(t.rstrip(":") for _, t in parents[-2:] if len(t) < 60) \
            if len(parents) > 1 else (parents[-1][1] if parents else "")
        if match:
            parents.append((indent, body))
        for sentence in _SENT_SPLIT.split(body) if len(body) > max_chars else [body]:
            sentence = sentence.strip()
            if len(sentence) < 12 or len(content_terms(sentence)) < 2:
                continue
            if lead and len(sentence) < 120 and not sentence.lower().startswith(lead.lower()):
                sentence = f"{lead.rstrip(':')}: {sentence}"
            units.append(Unit(sentence, hit_index, line_no, lead=lead))
    return units


_QUANTITY = re.compile(
    r"\b(how (many|much|long|big|large|often|fast)|limit|size|max(imum)?|min(imum)?|"
    r"duration|cost|price|range|rate|capacity|when|ttl|timeout|number of)\b", re.IGNORECASE)


def term_weights(question: str, units: list[Unit]) -> tuple[dict[str, float], list[set[str]]]:
    """IDF (over the candidate units) of the question's terms, and each unit's term set."""
    q_terms = {stem(t) for t in content_terms(question)}
    unit_terms = [{stem(t) for t in content_terms(u.text)} for u in units]
    df = {t: sum(t in terms for terms in unit_terms) for t in q_terms}
    idf = {t: math.log(1 + len(units) / (1 + df[t])) for t in q_terms}
    return idf, unit_terms


def covered(weights: dict[str, float], terms: set[str]) -> float:
    total = sum(weights.values()) or 1.0
    return sum(w for t, w in weights.items() if t in terms) / total


@dataclass
class Extract:
    """The chosen sentences, with the hit index each cites."""

    sentences: list[tuple[str, int, int]]  # (text, hit index, line)
    best: float
    coverage: float


def _finish(text: str) -> str:
    text = text.strip().rstrip(":;,")
    return text if text.endswith((".", "!", "?", ")")) else text + "."


@dataclass(frozen=True)
class ExtractParams:
    """Weights of the sentence scorer (chosen on the dev set; see README, "Answers")."""

    max_sentences: int = 4
    max_passages: int = 4
    max_words: int = 90
    shortlist: int = 24
    w_sim: float = 0.55
    w_lex: float = 0.45
    w_rank: float = 0.02
    w_number: float = 0.08
    w_novel: float = 0.0
    w_gain: float = 0.5
    band: float = 0.25
    redundant: float = 0.85
    w_same_lead: float = 0.1


def select_sentences(question: str, qvec: np.ndarray, hits: list[Hit], embedder,
                     params: ExtractParams = ExtractParams()) -> Extract:
    """Pick the sentences that answer: semantic + lexical fit, numbers for quantity
    questions, new information beyond the question's own words, then greedy selection that
    rewards covering the parts of the question not yet covered."""
    p = params
    units: list[Unit] = []
    for i, hit in enumerate(hits[:p.max_passages]):
        units.extend(split_units(hit, i))
    if not units:
        return Extract([], 0.0, 0.0)
    weights, unit_terms = term_weights(question, units)
    q_terms = set(weights)
    for u, terms in zip(units, unit_terms):
        u.lexical = covered(weights, terms)
        u.score = u.lexical + 0.5 * hits[u.hit_index].dense - 0.03 * u.hit_index
    wants_number = bool(_QUANTITY.search(question))
    ranked = sorted(range(len(units)), key=lambda i: units[i].score, reverse=True)[:p.shortlist]
    shortlist = [units[i] for i in ranked]
    terms_of = [unit_terms[i] for i in ranked]
    vectors = embedder.encode([u.text for u in shortlist])
    for u, terms, sim in zip(shortlist, terms_of, vectors @ qvec):
        novel = min(len(terms - q_terms), 5) / 5
        u.score = (p.w_sim * float(sim) + p.w_lex * u.lexical - p.w_rank * u.hit_index
                   + p.w_novel * novel
                   + (p.w_number if wants_number and any(ch.isdigit() for ch in u.text)
                      else 0.0))
    best = max(u.score for u in shortlist)
    chosen: list[int] = []
    seen_terms: set[str] = set()
    words = 0
    while len(chosen) < p.max_sentences:
        def gain(i: int) -> float:
            new = covered(weights, terms_of[i] - seen_terms) if chosen else 0.0
            lead = shortlist[i].lead
            same = bool(lead) and any(shortlist[j].lead == lead for j in chosen)
            return shortlist[i].score + p.w_gain * new - p.w_same_lead * same

        pool = [i for i in range(len(shortlist)) if i not in chosen
                and shortlist[i].score >= best - p.band
                and all(float(vectors[i] @ vectors[j]) <= p.redundant for j in chosen)]
        if not pool:
            break
        pick = max(pool, key=gain)
        size = len(shortlist[pick].text.split())
        if chosen and words + size > p.max_words:
            break
        chosen.append(pick)
        seen_terms |= terms_of[pick]
        words += size
    coverage = max(u.lexical for u in units)
    return Extract([(_finish(shortlist[i].text), shortlist[i].hit_index, shortlist[i].line)
                    for i in chosen], best, coverage)
