"""Polarity-aware evidence: which note clauses support or rule out a candidate statement.

Exam notes say *why an option is wrong* as often as why one is right ("Although you can use
Docker Secrets ..., this is only applicable in Docker Swarm"). Plain similarity would count
such a sentence as support for "use Docker Secrets", so every clause gets a polarity from its
own wording and from the heading it sits under ("Correct Solution", "Why Your Choice Was Less
Suitable"). Explain (deciding the correct option) and quiz validation (is the answer
supported, are the distractors not) both score candidates here, so they agree.

Nothing here knows the subject: the lexicons are exam English (negation, limits, verdicts,
second-person write-ups), never names of the things the notes are about.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from rag.extractive import lead_of, split_units
from rag.models import Hit
from rag.text import (CEILING, DENIAL, HEADING, clauses, content_terms, sentences, stems,
                      strip_markup)

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
# Text written about one particular exam question: the student's own earlier choice ("You
# chose ...", "Your approach ...") or a verdict on it ("... is the correct answer", "Here, the
# best fit is ..."). It is never presented as reasoning about a different question.
YOUR_CHOICE = re.compile(
    r"\byou(?:'ve| have)? (?:chose|chosen|picked|selected|opted|went with)\b"
    r"|\byour (?:chosen|choice|approach|answer|confusion|selection|solution|knowledge gap)\b",
    re.IGNORECASE)
BOUND = re.compile(
    YOUR_CHOICE.pattern
    + r"|\b(?:is|was|be) the (?:right|correct|best) (?:answer|choice|option|solution|fit)\b"
    r"|\bthe (?:correct|right) answer\b|\bthe (?:best|only) (?:fit|possible answer|option)\b"
    r"|\bhere,? (?:the|you|we|using|use|our)\b|\bin this scenario\b|\bthis (?:case|question)\b",
    re.IGNORECASE)
BOUND_HEADING = re.compile(r"\b(?:correct|chosen|recommended) solution\b|\bis correct\b",
                           re.IGNORECASE)
SCENARIO_LINE = re.compile(r"^(prompt|question|scenario|problem|requirements?|q)\s*:",
                           re.IGNORECASE)


SUBJECT_WORDS = 4  # the words at the start of a sentence or label that name its subject


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
    lead: str = ""  # the outline path above the line: its subject when it is a sub-bullet
    bound: bool = False  # written about one particular question (see BOUND)

    @property
    def context(self) -> str:
        """The clause with its outline path, as a reader of the notes sees it."""
        return f"{self.lead}: {self.text}" if self.lead else self.text

    @property
    def subjects(self) -> list[str]:
        """Where the clause names what it is about, nearest first: the start of the sentence,
        the start of each outline parent (innermost first), its heading. "EBS volume is SAN
        storage, not like EFS" is about EBS, whatever else it mentions."""
        parents = self.lead.split(" > ")[::-1] if self.lead else []
        return [" ".join(x.split()[:SUBJECT_WORDS]) for x in [self.text] + parents] + \
            [self.heading]

    @property
    def shown(self) -> str:
        """The clause with its nearest outline parent only (what a student reads)."""
        parent = self.lead.split(" > ")[-1]
        return f"{parent}: {self.text}" if parent else self.text


def heading_at(hit: Hit, line: int) -> str:
    """The innermost heading above ``line`` inside the chunk (else the chunk's heading)."""
    current = hit.chunk.heading.split(" > ")[-1] if hit.chunk.heading else ""
    for offset, raw in enumerate(hit.chunk.text.split("\n")):
        if hit.chunk.start_line + offset > line:
            break
        m = HEADING.match(raw.strip())
        if m:
            current = m.group(2)
    return current


# A negated drawback is a benefit: "won't require an application refactoring", "doesn't
# require developers to manage cache invalidation", "no need to provision servers", "no
# application re-write"; so are "not as good as X" for X and a bound on a gain ("up to 90%
# off"), which limits nothing.
BENEFIT = re.compile(
    r"\b(?:won't|will not|doesn't|does not|don't|do not|no longer|never)\s+(?:\w+\s+){0,2}?"
    r"(?:require|need|have to)\b|\bno need\b"
    # an absence of a burden: "no application re-write", "without managing servers"
    r"|\b(?:no|without)\s+(?:\w+\s+){0,2}?(?:re-?writ\w*|refactor\w*|code changes?|servers?|"
    r"downtime|manag\w*|maintenance|overhead|provision\w*|effort)\b"
    # a comparison in favour of what follows: "... but not as good as Instance Store"
    r"|\bnot (?:as|so) \w+ as\b"
    r"|\bup to \d[\d.,]*\s?(?:%|x|times)\s*(?:off|cheaper|savings?|discount|less|lower|faster|"
    r"more|better|reduction)\b", re.IGNORECASE)
# What rules an option out without a negation: a drawback, a limitation, a contrast.
DRAWBACK = re.compile(
    r"\b(?:although|however|limitations?|contradicts|unnecessary|only applicable|"
    r"only provides?|only supports?|would require|requires? a refactor|hard to|tedious|"
    r"less (?:suitable|efficient|effective)|insufficient|time(?:s|d)? out|timing out|"
    r"single point of failure|drawbacks?|overhead|instead of|"
    r"only (?:one|a single)|(?:one|a single) \w+ only|"
    r"(?:most|more|very|too) expensive|costly|overkill|require (?:a lot of |significant |"
    r"extensive )?(?:refactor\w*|re-?writ\w*|code changes))\b", re.IGNORECASE)


def is_limit(text: str) -> bool:
    """A part that states a ceiling or rules something out (a bound on a gain does not; a
    floor, "at least 1 node per AZ", limits nothing by itself)."""
    return bool(CEILING.search(BENEFIT.sub(" ", text))) or is_negative(text)


def is_negative(text: str) -> bool:
    """A part that rules something out (negated drawbacks do not count)."""
    text = BENEFIT.sub(" ", text)
    return bool(DENIAL.search(text) or DRAWBACK.search(text))


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
    parts = clauses(sentence)
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
    """Sentence-level clauses of every hit, de-duplicated by text.

    A sub-bullet's outline parents are its subject ("Snowball Edge:" above "comes with compute
    capability"), so their terms count with the clause's own first part."""
    out: list[Clause] = []
    seen: set[str] = set()
    for i, hit in enumerate(hits):
        lines = hit.chunk.text.split("\n")
        units = split_units(hit, i)
        for unit in units:
            heading = heading_at(hit, unit.line)
            raw = lines[unit.line - hit.chunk.start_line].lstrip()
            plain = strip_markup(raw.lstrip("-*+> ")).lstrip("_ ").lower()
            scenario = raw.startswith(">") or bool(SCENARIO_HEADING.search(heading)
                                                   or SCENARIO_LINE.match(plain))
            solution = plain.startswith(("solution", "answer"))
            heading_pol = -1 if NEG_HEADING.search(heading) else 0
            lead = lead_of(units, unit)
            bound_heading = bool(BOUND.search(heading) or BOUND_HEADING.search(heading))
            for sentence in sentences(unit.text):
                key = sentence.lower()
                if len(content_terms(sentence)) < 2 or key in seen:
                    continue
                seen.add(key)
                pol = 1 if solution and not is_negative(sentence) else polarity(
                    sentence, heading)
                pos, neg = _split_polarity(sentence, heading_pol)
                subject = stems(lead)
                if subject:
                    first = (clauses(sentence) or [sentence])[0]
                    if is_negative(first) or (heading_pol < 0 and not POSITIVE.search(first)):
                        neg |= subject
                    else:
                        pos |= subject
                out.append(Clause(sentence, i, unit.line, heading, pol, frozenset(pos),
                                  frozenset(neg), scenario, lead,
                                  bool(BOUND.search(sentence)) or bound_heading or solution))
    return out


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


def distinctive_terms(options: dict[str, str]) -> dict[str, set[str]]:
    """Each option's stemmed terms that fewer than half of the other options share."""
    terms = {k: stems(v) for k, v in options.items()}
    out: dict[str, set[str]] = {}
    for key, own in terms.items():
        others = [t for k, t in terms.items() if k != key]
        limit = max(1, len(others) // 2)
        out[key] = {t for t in own if sum(t in o for o in others) < limit} or own
    return out
