"""Polarity-aware evidence: which note clauses support or rule out a candidate statement.

Exam notes say *why an option is wrong* as often as why one is right ("Although you can use
Docker Secrets ..., this is only applicable in Docker Swarm"). Plain similarity would count
such a sentence as support for "use Docker Secrets", so every clause gets a polarity from its
own wording and from the heading it sits under ("Correct Solution", "Why Your Choice Was Less
Suitable"). Explain (deciding the correct option) and quiz validation (is the answer
supported, are the distractors not) both score candidates here, so they agree.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from rag.extractive import split_units
from rag.text import content_terms, stem as _stem
from rag.retrieval import Hit

_SENT = re.compile(r"(?<=[.!?;])\s+(?=[A-Z(`*_])")
_HEADING_LINE = re.compile(r"^\s*#{1,6}\s+(.*)$")
NEGATIVE = re.compile(
    r"\b(not|cannot|can't|can not|won't|doesn't|don't|isn't|aren't|wouldn't|shouldn't|"
    r"never|no longer|although|however|limitation|limitations|contradicts|unnecessary|"
    r"only applicable|only provides?|only supports?|would require|requires? a refactor|"
    r"hard to|tedious|less (?:suitable|efficient|effective)|insufficient|"
    r"time(?:s|d)? out|timing out|single point of failure|drawbacks?|overhead|"
    r"not (?:a good|the best|recommended|ideal|sufficient)|instead of)\b",
    re.IGNORECASE,
)
POSITIVE = re.compile(
    r"\b(correct answer|is the answer|the answer here|best fit|best solution|best choice|"
    r"is correct|recommended|ideal|preferable|the natural|solution|should use|"
    r"is the way|is more (?:appropriate|suitable|effective)|more suitable|only option|"
    r"best option|only possible answer|here,? (?:using|use|you need|the best)|is ideal)\b",
    re.IGNORECASE,
)
NEG_HEADING = re.compile(
    r"(your chosen|your choice|less suitable|isn.t the best|not the best|limitation|"
    r"might not be)", re.IGNORECASE)
POS_HEADING = re.compile(
    r"(correct solution|recommended solution|is correct|analyzing the correct|more effective|"
    r"why .* over |key points|choosing the right|right (?:choice|combination|option)|"
    r"best (?:option|choice))", re.IGNORECASE)
SCENARIO_HEADING = re.compile(r"understanding the (scenario|requirements|setup)", re.IGNORECASE)
# Independent clauses: negation scopes over its own segment ("X is for ETL, but cannot ..."
# rules X out), not across "; " or ", here ..." ("no health checks, here the TTL ...").
_PARTS = re.compile(r";\s+|,\s+(?=(?:here|and|so|therefore|which|whereas|while|instead)\b)|"
                    r"\s+-\s+|\s+whereas\s+"
                    # the remedy after a drawback is its own (positive) part:
                    # "... a lot of overhead, which can be simplified by using Parameter Store"
                    r"|\s+(?=which can be (?:simplified|solved|avoided|replaced)\b)"
                    r"|\s+(?=by (?:simply )?using\b)")


@dataclass
class Clause:
    """One sentence of a retrieved passage with where it came from and its polarity."""

    text: str
    hit_index: int
    line: int
    heading: str
    polarity: int  # -1 rules something out, +1 recommends, 0 states a fact
    pos_terms: frozenset[str] = frozenset()  # stems in the parts that state or recommend
    neg_terms: frozenset[str] = frozenset()  # stems in the parts that rule something out
    scenario: bool = False  # an exam prompt or "Understanding the Scenario": not evidence


@dataclass
class Match:
    """How well one clause matches a candidate statement (already polarity-signed later)."""

    clause: Clause
    score: float


def heading_at(hit: Hit, line: int) -> str:
    """The innermost heading above ``line`` inside the chunk (else the chunk's heading)."""
    current = hit.chunk.heading.split(" > ")[-1] if hit.chunk.heading else ""
    for offset, raw in enumerate(hit.chunk.text.split("\n")):
        if hit.chunk.start_line + offset > line:
            break
        m = _HEADING_LINE.match(raw)
        if m:
            current = m.group(1).strip()
    return current


# A negated drawback is a benefit: "won't require an application refactoring", "doesn't
# require developers to manage cache invalidation", "no need to provision servers".
BENEFIT = re.compile(
    r"\b(?:won't|will not|doesn't|does not|don't|do not|no longer|never)\s+(?:\w+\s+){0,2}?"
    r"(?:require|need|have to)\b|\bno need\b", re.IGNORECASE)
DRAWBACK = re.compile(
    r"\b(?:(?:most|more|very|too) expensive|costly|overkill|require (?:a lot of |significant |"
    r"extensive )?(?:refactor\w*|re-?writ\w*|code changes))\b", re.IGNORECASE)


def is_negative(text: str) -> bool:
    """A part that rules something out (negated drawbacks do not count)."""
    text = BENEFIT.sub(" ", text)
    return bool(NEGATIVE.search(text) or DRAWBACK.search(text))


def polarity(text: str, heading: str = "") -> int:
    if is_negative(text):
        return -1
    if POSITIVE.search(text) or POS_HEADING.search(heading):
        return 1
    if NEG_HEADING.search(heading):
        return -1
    return 0


def _split_polarity(sentence: str, heading_pol: int) -> tuple[set[str], set[str]]:
    """Stems of the sentence's positive and negative parts (negation scopes over its part)."""
    pos: set[str] = set()
    neg: set[str] = set()
    parts = _PARTS.split(sentence)
    negative = [is_negative(p) or (heading_pol < 0 and not POSITIVE.search(p)) for p in parts]
    for k in range(1, len(parts)):
        # "This approach involves managing EC2 instances, which contradicts the requirement":
        # a relative clause that objects rules out what it describes.
        if negative[k] and re.match(r"which\b", parts[k], re.IGNORECASE) \
                and not re.match(r"which can be", parts[k], re.IGNORECASE):
            negative[k - 1] = True
    for part, neg_part in zip(parts, negative):
        terms = stems(part)
        if neg_part:
            neg |= terms
        else:
            pos |= terms
    return pos, neg


def clauses_of(hits: list[Hit]) -> list[Clause]:
    """Sentence-level clauses of every hit, de-duplicated by text."""
    out: list[Clause] = []
    seen: set[str] = set()
    for i, hit in enumerate(hits):
        lines = hit.chunk.text.split("\n")
        for unit in split_units(hit, i):
            heading = heading_at(hit, unit.line)
            raw = lines[unit.line - hit.chunk.start_line].lstrip()
            scenario = raw.startswith(">") or bool(SCENARIO_HEADING.search(heading))
            body = unit.text
            solution = bool(re.match(r"^solution\s*:", body, re.IGNORECASE))
            if solution or re.match(r"^prompt\s*:", body, re.IGNORECASE):
                body = body.split(":", 1)[1].strip()
            heading_pol = -1 if NEG_HEADING.search(heading) else 0
            for sentence in _SENT.split(body):
                sentence = sentence.strip()
                key = sentence.lower()
                if len(content_terms(sentence)) < 2 or key in seen:
                    continue
                seen.add(key)
                pol = 1 if solution and not is_negative(sentence) else polarity(
                    sentence, heading)
                pos, neg = _split_polarity(sentence, heading_pol)
                out.append(Clause(sentence, i, unit.line, heading, pol, frozenset(pos),
                                  frozenset(neg), scenario))
    return out


def stems(text: str) -> set[str]:
    return {_stem(t) for t in content_terms(text)}


class VectorCache:
    """Sentence vectors by text: explain and quiz re-read the same clauses many times."""

    def __init__(self, embedder, size: int = 20000):
        self.embedder = embedder
        self.size = size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def encode(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            for text, vec in zip(missing, self.embedder.encode(missing)):
                self._cache[text] = vec
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        if not texts:
            return np.zeros((0, getattr(self.embedder, "dimension", 384)), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])


@dataclass
class Verdict:
    """A candidate's evidence: best supporting and best ruling-out clause, and the net score."""

    support: Match | None
    refute: Match | None
    refutes: list[Match] = field(default_factory=list)  # every ruling-out clause, best first

    @property
    def net(self) -> float:
        s = self.support.score if self.support else 0.0
        r = self.refute.score if self.refute else 0.0
        return s - r


def verdicts_for(candidates: dict[str, set[str]], cvecs: np.ndarray, clauses: list[Clause],
                 vectors: np.ndarray, relevance: np.ndarray | None = None,
                 weights: np.ndarray | None = None) -> dict[str, Verdict]:
    """Strongest support and refutation of each candidate among the clauses (contrastive).

    A clause matches a candidate with 0.6 x cosine + 0.4 x the IDF-weighted share of the
    candidate's distinctive terms in the clause's positive (or negative) parts. It counts
    for a candidate only by its margin over the best *other* candidate, so a sentence about
    the Network Load Balancer cannot support "Application Load Balancer" just because both
    say "load balancer". Refutation needs a distinctive term inside a negative part.
    ``relevance`` (clause vs. scenario) scales everything: facts about the situation matter;
    ``weights`` (one per clause) replaces that scaling when given.
    """
    keys = list(candidates)
    if not clauses or not keys:
        return {k: Verdict(None, None) for k in keys}
    df: dict[str, int] = {}
    for c in clauses:
        for t in c.pos_terms | c.neg_terms:
            df[t] = df.get(t, 0) + 1
    idf = {t: math.log(1 + len(clauses) / (1 + df.get(t, 0))) for k in keys
           for t in candidates[k]}
    sims = vectors @ cvecs.T  # clauses x candidates
    rel = relevance if relevance is not None else np.ones(len(clauses))
    pos = np.zeros((len(clauses), len(keys)))
    neg = np.zeros((len(clauses), len(keys)))
    for j, k in enumerate(keys):
        terms = candidates[k]
        total = sum(idf[t] for t in terms) or 1.0
        for i, c in enumerate(clauses):
            pos[i, j] = sum(idf[t] for t in terms & c.pos_terms) / total
            neg[i, j] = sum(idf[t] for t in terms & c.neg_terms) / total
    sup = 0.6 * sims + 0.4 * pos
    ref = 0.6 * sims + 0.4 * neg
    out: dict[str, Verdict] = {}
    for j, k in enumerate(keys):
        others = [x for x in range(len(keys)) if x != j]
        support = None
        refutes: list[Match] = []
        for i, c in enumerate(clauses):
            if c.scenario:
                continue
            weight = float(weights[i]) if weights is not None else 0.5 + float(rel[i])
            if neg[i, j] > 0:
                margin = ref[i, j] - (max(ref[i, others]) if others else 0.0)
                score = (0.5 * ref[i, j] + 0.5 * max(margin, 0.0)) * weight
                refutes.append(Match(c, float(score)))
            if c.pos_terms and (pos[i, j] > 0 or neg[i, j] == 0):
                margin = sup[i, j] - (max(sup[i, others]) if others else 0.0)
                score = (0.5 * sup[i, j] + 0.5 * max(margin, 0.0)) * weight
                score += 0.05 if c.polarity > 0 else 0.0
                if support is None or score > support.score:
                    support = Match(c, float(score))
        refutes.sort(key=lambda m: m.score, reverse=True)
        out[k] = Verdict(support, refutes[0] if refutes else None, refutes)
    return out


def distinctive_terms(options: dict[str, str]) -> dict[str, set[str]]:
    """Each option's stemmed terms that fewer than half of the other options share."""
    terms = {k: stems(v) for k, v in options.items()}
    out: dict[str, set[str]] = {}
    for key, own in terms.items():
        others = [t for k, t in terms.items() if k != key]
        limit = max(1, len(others) // 2)
        out[key] = {t for t in own if sum(t in o for o in others) < limit} or own
    return out
