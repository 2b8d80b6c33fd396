"""Practice questions from the notes, on any topic phrase, each validated before it is shown.

Nothing here knows the subject. What a question needs is learned from the indexed notes
(:class:`Vocabulary`): the names the notes use (capitalised terms and acronyms they repeat
mid-sentence, and their section headings), aliases ("Amazon X" = "X", "Name (ABBR)"), and
families of alternatives (names listed side by side, sibling headings). A topic phrase is
retrieved like a question; the questions come from the lines of those passages:

* ``which-fits``: a line about one name ("X can run up to 15 minutes") becomes "Which of these
  can run up to 15 minutes?" with that name right and its outline siblings (labels or
  headings beside it) as distractors, the most alike first, unless one of their own lines
  says much the same; a line that is no predicate (a verbless bullet) makes no question;
* ``true-statement``: a line with a number or limit; the distractors change the number to other
  values the notes use with the same unit;
* ``true-false``: any line that reads as a sentence on its own (one claim, no outline
  fragment, no pointing word), under the name of its section: as the notes say it, or made
  false by changing its figure to one they give for something else or by turning its verb the
  other way ("can" -> "cannot", "supports" -> "does not support", "is not" -> "is"); so prose
  notes get questions too;
* ``harvested``: the notes' own exam scenarios (a prompt line followed by a solution line).

One question per line, in the order judged best blind (``evals/judging/``): a figure
statement, else a true-false statement, else which-fits.

:class:`Validator` checks each one against its passage before use: one option supported, no
distractor the notes also state, no word of an option in the stem (in any form), no
near-duplicate. A set tests several things: one question per answer, two per passage. With a
configured generator, questions come as structured output and go through the same validator.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from rag.config import QuizSettings
from rag.errors import InputError, StudyragError
from rag.evidence import (BOUND, SCENARIO_LINE, VectorCache, clauses_of, heading_at,
                          is_negative, stems)
from rag.extractive import lead_of, split_units
from rag.generation.registry import writes
from rag.models import Chunk, Hit, Passage
from rag.text import (STOP, as_sentence, clauses, content_terms, sentences, strip_markup,
                      term_pairs)

log = logging.getLogger(__name__)
Source = Literal["harvested", "which-fits", "true-statement", "true-false", "generated"]
TRUE_FALSE = ["True", "False"]
# What separates listed names ("A, B and C", "A vs B"): between two names, or in a topic phrase.
_SEPARATOR = r"(?:,|;|/|&|\band\b|\bor\b|\bvs\b\.?|\bversus\b|\bnor\b)"
_LISTED = re.compile(rf"^\s*(?:{_SEPARATOR}|,\s*and|,\s*or)\s*$", re.IGNORECASE)
_TOPIC_LIST = re.compile(_SEPARATOR, re.IGNORECASE)  # "Sigmoid, tanh and ReLU": a list
_GENERIC_HEADING = re.compile(
    r"^(understanding|analy[sz]ing|why|key points|conclusion|correct solution|comparison|"
    r"example|importance|factors|alternatives|choosing|questions|resources|table of contents|"
    r"summary|introduction|overview|notes?|extra notes|notations?|algorithm|implementation|"
    r"use cases?)\b", re.IGNORECASE)
_TERM = re.compile(r"(?<![\w@/-])(?:[A-Z][\w@/+-]*[A-Za-z0-9+]|[A-Z])"
                   r"(?:[ ](?:[A-Z][\w@/+-]*[A-Za-z0-9]|\d{1,4}\b))*")
_ABBR = re.compile(r"([A-Z][\w@/+-]*(?:[ -][A-Z][\w@/+-]*)*)\s+\(([A-Z][A-Za-z0-9]{1,7})\)")
_BULLET_MARK = "-*+>•○§◊®}□▪◦· \t"
_NUMBER = re.compile(r"(?<![\w./,])(\d{1,5}(?:\.\d{1,2})?)(?![\d,.]\d)(\s?)([A-Za-z]{1,12}\b)?")
# A line that points at its surroundings ("this way", "the above", "now let's") cannot stand
# alone as a question.
_DEICTIC = re.compile(r"\b(this|that|these|those|it|they|them|above|below|before|previous|"
                      r"following|here|now|same|such|latter|former|let's|we|our|us)\b",
                      re.IGNORECASE)
# Labels about a family rather than members of it (exam English, not the subject's words).
# "that" after a noun or verb ("an RNN type that can help", "the advantage is that") joins a
# clause; after a preposition or verb of doing, or opening a sentence, it points ("like that").
_POINTING_THAT = re.compile(r"(?:^|[.!?:;]\s*|\b(?:in|on|of|for|with|at|by|from|to|like|do|does|"
                            r"did|doing|done|all|just|is|are|was|were)\s+)$", re.IGNORECASE)
_META = re.compile(r"\b(considerations?|steps?|types?|basics|attributes?|concepts?|"
                   r"approach(?:es)?|overview|general|summary|examples?|definitions?|"
                   r"architecture|fundamentals|refresher|notation|dominant)\b", re.IGNORECASE)
_BARE_USE = re.compile(r"^(can|should|may|must)?\s*use\s+(?=(?:if|when|for|to|with|in|as)\b)",
                       re.IGNORECASE)
# The verb a false statement denies; one followed by a frequency ("is always") is left
# alone, since "not always" is no opposite of it.
_VERBS = (r"provide|offer|support|allow|use|let|give|make|run|store|work|help|require|need|"
          r"enable|guarantee|create|keep|take|send|receive|reduce|increase|improve|prevent|"
          r"replicate|contain|include|return|compute|scale|cache|encrypt|protect|charge")
_VERB_S = re.compile(rf"\b(?:({_VERBS})s|has)\b(?!\s+(?:always|never|only|often)\b)")
_DENIAL_OF = re.compile(
    rf"\b(?:(?P<aux>is|are|was|were|will|should|must|can|has|have) ?(?:not|no(?= \w+s\b))|"
    rf"(?:does not|doesn't) "
    rf"(?P<does>{_VERBS})|(?:do not|don't) (?P<do>{_VERBS})|can't|won't|isn't|aren't|"
    rf"wasn't|weren't|shouldn't)\b", re.IGNORECASE)
_AFFIRMED = {"can't": "can", "won't": "will", "isn't": "is", "aren't": "are", "wasn't": "was",
             "weren't": "were", "shouldn't": "should", "cannot": "can"}
_DENIAL_TERMS = {*_AFFIRMED, "not", "no", "doesn't", "don't"}
_OFTEN = r"(?:always|never|only|often|usually|mostly|generally|typically|rarely|sometimes)"
_FREQUENCY = re.compile(rf"\b{_OFTEN}\s+$", re.IGNORECASE)
_DENIABLE = re.compile(r"\b(is|are|was|were|can|will|should|must|ha[sd](?=\s+(?:been|\w+ed)\b))\b"
                       rf"(?!\s+{_OFTEN}\b)")
_RELATIVE = re.compile(r"\b(which|that|who|where|when|only)\b", re.IGNORECASE)
# Sentences whose denial is no opposite: a condition ("If X, then Y"), existence ("There are"),
# a whole class ("all instances are ..."), a comparison ("are two different things").
_UNDENIABLE = re.compile(r"^(?:if|when|unless|once|while|there\s+(?:is|are|was|were))\b",
                         re.IGNORECASE)
_WHOLE_CLASS = re.compile(r"\b(?:all|every|each|both|none)\b", re.IGNORECASE)
_COMPARED = re.compile(r"^\s*(?:not\s+)?(?:very\s+|quite\s+|so\s+)?(?:\w+\s+)?"
                       r"(?:different|same|similar|alike|like|unlike|more|less)\b", re.IGNORECASE)
_SOME = re.compile(r"^(?:some|one|many|most|several|a few|a lot of|certain|often)\b",
                   re.IGNORECASE)
_DEFINES = re.compile(r"^(?:(?:the|an?)\s+)?(?:[\w()/@-]+\s+){1,5}(?:is|are)(?: not)?\s+"
                      r"(?:a|an|the|just)\b", re.IGNORECASE)
_POINTER = re.compile(r"\b(this|these|those|it|its|they|them|above|below|here|we|our|us|"
                      r"you|he|she|his|her|let's|but|however|although|though|whereas|while)\b",
                      re.IGNORECASE)
_FORMULA = re.compile(r"[<>{}=|\\^]|\w\[\w")  # markup, formulas, code: not a question
_LABELLED = re.compile(r"^(prompt|question|scenario)\s*:\s*", re.IGNORECASE)
_SOLUTION = re.compile(r"^(solution|answer)\s*:\s*", re.IGNORECASE)
_COPULA = re.compile(r"^(?:is|are|was|were|can|cannot|can't|will|won't|has|have|does|doesn't|"
                     r"do|don't|should|must|may|provides?|offers?|supports?|allows?|uses?|"
                     r"lets?|gives?|makes?|runs?|stores?|works?|helps?|requires?|needs?)\b",
                     re.IGNORECASE)


class Question(BaseModel):
    """One multiple-choice question (four options; True/False for ``true-false``);
    ``passage`` is the note passage it tests (cited)."""

    id: str
    topic: str
    stem: str
    options: list[str] = Field(min_length=2, max_length=4)
    answer_index: int = Field(ge=0, le=3)
    explanation: str
    passage: Passage
    source: Source

    @model_validator(mode="after")
    def _options_fit_the_kind(self) -> "Question":
        if self.source == "true-false":
            if self.options != TRUE_FALSE:
                raise ValueError(f"a true-false question has the options {TRUE_FALSE}")
        elif len(self.options) != 4:
            raise ValueError("a multiple-choice question has four options")
        if self.answer_index >= len(self.options):
            raise ValueError("the answer is not one of the options")
        return self

    @property
    def statement(self) -> str:
        """What a true-false question asks about (its stem without the prompt)."""
        return self.stem.rsplit("? ", 1)[-1]  # the statement itself asks nothing

    @property
    def fact(self) -> frozenset[str] | str:
        """What it tests, so a set tests each thing once: the answer's own words (a
        true-false question: its statement's, either way round: a line asked as it is and
        denied is one fact)."""
        if self.source == "true-false":
            return frozenset(stems(self.statement) - _DENIAL_TERMS)
        return frozenset(stems(self.answer) - stems(self.stem)) or self.answer.lower()

    @field_validator("stem", "explanation")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @property
    def answer(self) -> str:
        return self.options[self.answer_index]

    @property
    def letter(self) -> str:
        return "ABCD"[self.answer_index]

    def to_json(self) -> dict:
        return self.model_dump(mode="json")


class GeneratedQuestion(BaseModel):
    """What a generator must return (structured output), before it gets a passage and id."""

    stem: str
    options: list[str] = Field(min_length=4, max_length=4)
    answer_index: int = Field(ge=0, le=3)
    explanation: str


class Topic(BaseModel):
    name: str
    chunks: int
    files: list[str]


class QuizError(StudyragError):
    """No questions can be made (the notes don't cover the topic, or too little on it)."""


# --- topics --------------------------------------------------------------------------------
def _is_topic_heading(part: str, title: str) -> bool:
    words = re.findall(r"[A-Za-z0-9]{2,}", part)
    return bool(words) and part != title and not _GENERIC_HEADING.match(part)


def _topic_of(chunk: Chunk) -> str:
    """The first non-generic heading of the chunk's path (the section it belongs to)."""
    for part in (chunk.heading or "").split(" > "):
        part = part.strip()
        if part and _is_topic_heading(part, chunk.title):
            return part
    return ""


def list_topics(index, min_chunks: int = 1) -> list[Topic]:
    """Topics from the notes' heading structure (top-level sections), biggest first."""
    found: dict[str, Topic] = {}
    for chunk in index.chunks().values():
        name = _topic_of(chunk)
        if not name:
            continue
        topic = found.setdefault(name.lower(), Topic(name=name, chunks=0, files=[]))
        topic.chunks += 1
        if chunk.file not in topic.files:
            topic.files.append(chunk.file)
    return sorted((t for t in found.values() if t.chunks >= min_chunks),
                  key=lambda t: (-t.chunks, t.name.lower()))


def _hit(chunk: Chunk) -> Hit:
    return Hit(id=chunk.id, chunk=chunk, fused=0.0, dense=0.0, bm25=0.0)


def _qid(source: str, *parts: str) -> str:
    return source[:2] + "-" + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:10]


def _plain(line: str) -> str:
    return strip_markup(line.strip().lstrip(_BULLET_MARK))


# --- what the notes name --------------------------------------------------------------------
@dataclass
class Vocabulary:
    """The names the notes use, their aliases and families of alternatives (learned).

    A name is a capitalised term or acronym the notes repeat mid-sentence (not an English
    word they also write in lower case); "Name (ABBR)" makes ABBR an alias, a plural is its
    singular, and a leading stop word ("The", "AWS") is not part of a name."""

    names: dict[str, str] = field(default_factory=dict)  # lower-case form -> canonical name
    family: dict[str, Counter] = field(default_factory=dict)  # canonical -> listed with it
    lines: dict[str, list[tuple[str, Chunk]]] = field(default_factory=dict)  # name -> lines
    told: Counter = field(default_factory=Counter)  # name -> lines that start with it
    reach: Counter = field(default_factory=Counter)  # name -> passages that mention it
    total_lines: int = 0
    total_chunks: int = 0
    _pattern: re.Pattern | None = None

    @classmethod
    def build(cls, chunks: Iterable[Chunk]) -> "Vocabulary":
        chunks = list(chunks)
        mid: Counter = Counter()
        lower: Counter = Counter()
        aliases: dict[str, str] = {}
        for chunk in chunks:
            for raw in chunk.text.split("\n"):
                line = _plain(raw.lstrip("#"))
                lower.update(re.findall(r"\b[a-z][a-z0-9-]+\b", line))
                for m in _TERM.finditer(line):
                    words = m.group(0).split()
                    if words[0].lower() in STOP and len(words) > 1:  # "The Hubble ..."
                        mid[" ".join(words[1:])] += 1
                        continue
                    before = line[: m.start()].rstrip()
                    if before and re.search(r"[a-z,]$", before):
                        mid[m.group(0)] += 1
                for m in _ABBR.finditer(line):
                    full = m.group(1).split()
                    aliases[m.group(2)] = " ".join(full[1:] if full[0].lower() in STOP
                                                   else full)
        names = {t for t, n in mid.items() if n >= 2 and len(t) > 1
                 and lower[t.lower()] < 3 * n}  # "NOT", "Restore": English words, not names
        canon: dict[str, str] = {}
        for t in sorted(names, key=len):
            base = t[:-1] if t.endswith("s") and t[:-1] in names else t  # plural
            canon[t.lower()] = canon.get(base.lower(), base)
        for abbr, full in aliases.items():
            if abbr in names and full in names:
                canon[abbr.lower()] = canon.get(full.lower(), full)
        # Words the whole subject shares ("AWS", "Amazon" in the stop list) name nothing.
        canon = {k: v for k, v in canon.items() if k not in STOP}
        vocab = cls(names=canon)
        for chunk in chunks:
            vocab._learn(chunk)
            vocab.reach.update(set(vocab.find(chunk.text)))
        vocab.total_chunks = len(chunks)
        return vocab

    def general(self, name: str) -> bool:
        """A name a quarter of the passages mention is the subject itself (the platform or
        field the notes are about), not one thing in it to tell apart from others."""
        return self.reach[name] * 4 > max(self.total_chunks, 1)

    def described(self, name: str) -> bool:
        """The notes say things about it: two or more lines start with it (not a word such
        as a protocol or a language that lines merely mention)."""
        return self.told[name] >= 2

    def _learn(self, chunk: Chunk) -> None:
        """Lines per name, and which names the notes list as alternatives: side by side in
        an enumeration ("A, B and C", "A vs B", "A/B"), as subjects of the sentences of one
        line, or as subjects of sibling bullets."""
        units = split_units(_hit(chunk), 0)
        by_parent: dict[int | None, list[str]] = defaultdict(list)
        for u in units:
            self.total_lines += 1
            spans = self.spans(u.text)
            for _, _, name in spans:
                self.lines.setdefault(name, []).append((u.text, chunk))
            listed = [name for i in range(len(spans) - 1)
                      if _LISTED.match(u.text[spans[i][1]: spans[i + 1][0]])
                      for name in (spans[i][2], spans[i + 1][2])]
            subjects = [self.subject(s) for s in sentences(u.text)]
            self._together(list(dict.fromkeys(listed)))
            self._together(list(dict.fromkeys(x for x in subjects if x)))
            if first := self.subject(u.text):
                self.told[first] += 1
                if u.parent is not None:
                    by_parent[u.parent].append(first)
        for group in by_parent.values():
            self._together(list(dict.fromkeys(group)))

    def _together(self, group: list[str]) -> None:
        for a in group:
            for b in group:
                if a != b:
                    self.family.setdefault(a, Counter())[b] += 1

    @property
    def pattern(self) -> re.Pattern:
        if self._pattern is None:
            forms = sorted(self.names, key=len, reverse=True)
            self._pattern = re.compile(
                r"(?<![\w@-])(?:" + "|".join(re.escape(f) for f in forms) + r")(?![\w@-])",
                re.IGNORECASE) if forms else re.compile(r"(?!x)x")
        return self._pattern

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, canonical name) of every name in the text, longest forms first."""
        return [(m.start(), m.end(), self.names[m.group(0).lower()])
                for m in self.pattern.finditer(text)]

    def find(self, text: str) -> list[str]:
        """Canonical names mentioned in the text, in order."""
        return [name for _, _, name in self.spans(text)]

    def subject(self, text: str) -> str | None:
        """The name a line or sentence starts with (after an article or prefix), if any."""
        m = re.match(r"^(?:the |an? )?", text, re.IGNORECASE)
        found = self.spans(text[m.end():])
        return found[0][2] if found and found[0][0] == 0 else None

    def forms(self, name: str) -> list[str]:
        """Every written form of a name (aliases, prefixed and plural forms)."""
        return sorted({k for k, v in self.names.items() if v == name} | {name.lower()},
                      key=len, reverse=True)

    def mentions(self, text: str, name: str) -> bool:
        return name in self.find(text)

    def siblings(self, name: str, vectors: VectorCache, kind_min: float) -> list[str]:
        """Alternatives of the same kind: names the notes list as alternatives to this one,
        ranked by how alike the notes' lines about each are (the mean line vector is what a
        name *is* in these notes). Never one that contains it or is part of it ("Hubble" and
        "Hubble Space Telescope" are one thing seen twice)."""
        words = set(name.lower().split())
        pool = []
        for other, together in self.family.get(name, Counter()).most_common(30):
            ow = set(other.lower().split())
            if ow <= words or words <= ow or len(self.lines.get(other, [])) < 2:
                continue
            pool.append((other, together))
        if not pool:
            return []
        own = self.kind(name, vectors)
        scored = [(float(self.kind(o, vectors) @ own) + 0.03 * min(t, 5), o) for o, t in pool]
        return [o for score, o in sorted(scored, reverse=True) if score >= kind_min]

    def kind(self, name: str, vectors: VectorCache) -> np.ndarray:
        lines = [t for t, _ in self.lines.get(name, [])[:12]] or [name]
        mean = vectors.encode(lines).mean(axis=0)
        return mean / (np.linalg.norm(mean) or 1.0)


# --- validation ----------------------------------------------------------------------------
def _norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _hints(question: Question) -> list[str]:
    """A word of an option in the stem, in any form ("by weighting votes" for "Weighted"),
    points at it (or away from it). Words every option shares, and the words of the cited
    section's headings (the stem's scope: "In your notes on ..."), do not."""
    shared = set.intersection(*(stems(o) for o in question.options))
    told = stems(question.stem) - stems(question.passage.heading.replace(" > ", " "))
    out = []
    for i, option in enumerate(question.options):
        if (stems(option) - shared) & told:
            out.append("the stem gives the answer away" if i == question.answer_index
                       else f"the stem names option {option!r}")
    return out


class Validator:
    """Checks a question against its passage; remembers accepted ones to catch duplicates."""

    def __init__(self, embedder, params: QuizSettings = QuizSettings()):
        self.vectors = VectorCache(embedder)
        self.params = params
        self.accepted: list[np.ndarray] = []

    def support(self, question: Question) -> list[float]:
        """Per option: how well one clause of the passage states "stem + option" (0..1); for a
        true-false question, how well one states its statement (one score)."""
        if question.source == "true-false":
            return self._support(question, [question.statement], [question.statement],
                                 denies=is_negative(question.statement))
        # A statement option is the whole claim; otherwise the stem says what the option does.
        claims = [o if question.source == "true-statement" else f"{question.stem} {o}"
                  for o in question.options]
        return self._support(question, list(question.options), claims)

    def _support(self, question: Question, options: list[str], claims: list[str],
                 denies: bool | None = None) -> list[float]:
        chunk = Chunk(file=question.passage.file, heading=question.passage.heading,
                      start_line=question.passage.start_line,
                      end_line=question.passage.end_line, text=question.passage.text)
        clauses = [c for c in clauses_of([_hit(chunk)]) if c.polarity >= 0 or c.pos_terms]
        if not clauses:
            return [0.0] * len(options)
        cvecs = self.vectors.encode([c.context for c in clauses])
        qvecs = self.vectors.encode(claims)
        scores = []
        for option, claim, qvec in zip(options, claims, qvecs):
            own = stems(option) or {_norm(option)}
            claim_terms = stems(claim)
            best = 0.0
            for clause, cvec in zip(clauses, cvecs):
                terms = clause.pos_terms | stems(f"{clause.lead} {clause.heading}")
                if not own <= terms or denies is not None and \
                        is_negative(clause.text) != denies:
                    continue  # stated positively (a statement: with its own polarity)
                cover = len(claim_terms & terms) / max(len(claim_terms), 1)
                best = max(best, 0.5 * float(cvec @ qvec) + 0.5 * cover)
            scores.append(best)
        return scores

    def validate(self, question: Question, remember: bool = True) -> list[str]:
        """Problems that make the question unfit to show (empty list = valid)."""
        problems: list[str] = []
        opts = [_norm(o) for o in question.options]
        if len(set(opts)) < len(opts) or any(not o for o in opts):
            problems.append("options are not distinct")
        if not question.stem.strip() or not question.passage.text.strip():
            problems.append("empty stem or passage")
        if question.source in ("which-fits", "generated"):
            problems += _hints(question)
        if question.source == "true-false":
            said = self.support(question)[0]
            if question.answer == "True" and said < self.params.support_min:
                problems.append(f"the true statement is not supported by the cited passage "
                                f"({said:.2f})")
            if question.answer == "False" and said >= self.params.distractor_max:
                problems.append(f"the false statement is also supported ({said:.2f})")
        elif question.source != "harvested":
            scores = self.support(question)
            right = scores[question.answer_index]
            if right < self.params.support_min:
                problems.append(f"answer not supported by the cited passage ({right:.2f})")
            too_close = min(self.params.distractor_max, right - 0.05)
            for i, score in enumerate(scores):
                if i != question.answer_index and score >= too_close:
                    problems.append(f"distractor {question.options[i]!r} is also supported "
                                    f"({score:.2f})")
        said = question.statement if question.source == "true-false" else \
            f"{question.stem} {question.answer}"  # the section named in a prompt is no news
        vec = self.vectors.encode([said])[0]
        if any(float(vec @ other) >= self.params.duplicate_cos for other in self.accepted):
            problems.append("near-duplicate of an earlier question")
        if not problems and remember:
            self.accepted.append(vec)
        return problems


def validate(question: Question, validator: Validator, remember: bool = False) -> list[str]:
    """Module-level entry: the problems of one question (see ``Validator.validate``)."""
    return validator.validate(question, remember=remember)


# --- writing questions ---------------------------------------------------------------------
@dataclass
class _Line:
    """A note line that can become a question: its text, subject name and place."""

    text: str
    subject: str
    chunk: Chunk
    line: int
    topic_sim: float = 0.0
    section: str = ""  # the innermost heading above the line
    after: str = ""  # the passage's next line (what the notes go on to say)

    def __post_init__(self) -> None:
        self.section = self.section or heading_at(_hit(self.chunk), self.line)

    @property
    def where(self) -> str:
        """The section as a student is told it ("a question?" heading names nothing)."""
        return "" if self.section.endswith("?") else self.section
    # Alternatives of the same kind from the outline (sibling labels or sibling headings),
    # with what the notes say under each; empty: the vocabulary's families are used.
    alternatives: dict[str, list[tuple[str, Chunk]]] = field(default_factory=dict)
    family: str = ""  # what the alternatives are (their parent label or heading)
    own: list[str] = field(default_factory=list)  # the notes' other lines about the answer
    named: str = ""  # the name the line starts with, when the answer is its section heading
    from_heading: bool = False  # the subject is the section heading, not named by the line


@dataclass
class _Swap:
    """Copies of a line with its one figure changed (``fills``: the values put in, most
    tempting first; ``confused``: what the first one is in the notes)."""

    variants: list[str]
    figure: str
    fills: list[str]
    confused: str


def _label(text: str) -> str:
    """An outline label or heading as an option: markup, trailing colon and a parenthesised
    abbreviation kept short ("Simple Routing:" -> "Simple Routing")."""
    return strip_markup(text).rstrip(":").strip()


def _is_label(text: str, most: int = 4) -> bool:
    """A short outline label naming a thing (1-4 words, no sentence, no verb), e.g.
    "Weighted:" or "Spread"; not a heading about the others ("Considerations", "Types")."""
    words = _label(text).split()
    joined = " ".join(words)
    return 1 <= len(words) <= most and "vs" not in words and not re.search(
        r"[.;!?]$", text) and not _COPULA.search(joined) and not _DEICTIC.search(joined) \
        and not _META.search(joined)


def _below(units, k: int) -> list[int]:
    """Every bullet nested under unit ``k``, at any depth, in order (a label's facts may sit
    one level down: "Designed for extensions" > "Capacity is limited...")."""
    out, todo = [], list(units[k].children)
    while todo:
        c = todo.pop(0)
        out.append(c)
        todo[:0] = units[c].children
    return out


def _acronym(name: str) -> re.Pattern | None:
    """The initials of a name of three or more words as a word to find ("Gated recurrent
    unit" -> "GRU"), which notes often write instead of it; None for a shorter name."""
    words = content_terms(name.replace("-", " "))
    return re.compile(rf"\b{''.join(w[0] for w in words).upper()}\b") if len(words) >= 3 \
        else None


@dataclass(frozen=True)
class _TopicNames:
    """What a line must write to be about a topic phrase. A topic that names one thing
    ("KMS key rotation") needs every word that names it — one fewer than
    ``quiz.common_share`` of the passages use, so not "key" — or its initials ("GRU" for
    "Gated recurrent unit"). A list ("Lambda limits: timeout, memory and storage") needs a
    word naming one of its items (an item of common words alone, "storage", names itself).
    Either way two of the topic's words in a row do ("user data"). Judged blind: DataSync
    lines for "Snowball data migration", VPC Peering's "traffic flow" for "VPC flow logs"."""

    listed: bool
    naming: frozenset[str]  # a list: any of them; one thing: all of them
    pairs: frozenset[str]
    initials: re.Pattern | None

    def named_by(self, own: set[str], said: str) -> bool:
        """``own``: the topic's words in the line, its section or its subject; ``said``: that
        text."""
        if own & self.naming if self.listed else self.naming <= own:
            return True
        return bool(self.pairs & term_pairs(said)) or bool(
            self.initials and self.initials.search(said))


def _stands_alone(text: str) -> bool:
    """One sentence a student can judge without its surroundings: 6-30 words, capitalised, no
    outline fragment (a colon or a dash between parts), no question, no pointing word
    ("this", "it", "we"), one claim (no "but", "although")."""
    words = text.split()
    return 6 <= len(words) <= 30 and text[:1].isupper() and len(sentences(text)) == 1 \
        and not re.search(r"[:?]|\s[-–]\s", text) and not _FORMULA.search(text) \
        and not _DEICTIC.search(" ".join(words[:3])) and not _POINTER.search(text)


def _flipped(text: str) -> str | None:
    """The sentence made false by turning its one verb the other way: "can help" -> "cannot
    help", "supports" -> "does not support", "is not" -> "is"; None when it has no such verb,
    more than one denial, a frequency ("is always": "not always" is no opposite) or a sentence
    whose denial is no opposite (``_UNDENIABLE``, a whole class, a comparison)."""
    if _SOME.match(text) or _UNDENIABLE.match(text):
        return None  # "some X are not Y" does not deny "some X are Y"
    if is_negative(text):
        found = list(_DENIAL_OF.finditer(text))
        if len(found) != 1:
            return None
        m = found[0]
        word = _AFFIRMED.get(m.group(0).lower()) or (
            f"{m.group('does')}s" if m.group("does") else m.group("do") or m.group("aux"))
        out = f"{text[:m.start()]}{_cased(word, m.group(0))}{text[m.end():]}"
        return None if is_negative(out) else out
    m = _DENIABLE.search(text) or _VERB_S.search(text)
    if m and (_RELATIVE.search(text[:m.start()]) or _FREQUENCY.search(text[:m.start()])
              or _WHOLE_CLASS.search(text[:m.start()]) or _COMPARED.match(text[m.end():])):
        return None  # a relative clause's verb, "almost always works", "all are", "is like"
    if m and m.re is _DENIABLE:
        word = m.group(1)
        out = f"{text[:m.start()]}{word}{'not' if word.lower() == 'can' else ' not'}" \
              f"{text[m.end():].removeprefix(' also')}"
    elif m:
        base = "have" if m.group(0).lower() == "has" else m.group(1)
        start = m.start()
        if (adverb := re.search(r"\b\w+ly\s+$", text[:start])):
            start = adverb.start()  # "does not asynchronously replicate"
        out = f"{text[:start]}does not {text[start:m.start()]}{base}{text[m.end():]}"
    else:
        return None
    return out if is_negative(out) else None


def _cased(word: str, like: str) -> str:
    return word[:1].upper() + word[1:] if like[:1].isupper() else word


def _indented(chunk: Chunk, line: int) -> bool:
    """An indented line is a sub-bullet even where the chunk cut its parent off."""
    raw = chunk.text.split("\n")[line - chunk.start_line: line - chunk.start_line + 1]
    return bool(raw) and raw[0][:1].isspace()


def _voice(predicate: str) -> str:
    """An outline's bare "use if ..." / "can use for ..." read as a question about the
    thing: "is used if ...", "can be used for ..."."""
    m = _BARE_USE.match(predicate)
    if not m:
        return predicate
    return (f"{m.group(1).lower()} be used " if m.group(1) else "is used ") + predicate[m.end():]


def _sentence_with(text: str, value: str) -> str:
    """The sentence of a line that states a figure (the whole line when none is split)."""
    return next((s for s in sentences(text) if value in s), text)


def _words(text: str) -> set[str]:
    """Stems of a phrase with its hyphenated words also apart ("Multi-head" meets "Multi
    head")."""
    return stems(text) | stems(text.replace("-", " "))


def _same_thing(a: str, b: str) -> bool:
    """One name with and without a parenthesised qualifier ("Kepler", "Kepler (K2)") is
    one thing twice; two qualified forms ("Kepler (K2)", "Kepler (prime)") are not."""
    bare = [re.sub(r"\s*\([^)]*\)", "", x).strip().lower() for x in (a, b)]
    return bare[0] == bare[1] and (a.lower() == bare[0] or b.lower() == bare[1])


def _distinct(answer: str, distractors: list[str]) -> list[str]:
    """Distractors that are not the answer or an earlier one in other words: a word set
    inside another ("Use Hubble", "Use the Hubble archive") is one option
    twice."""
    kept: list[str] = []
    for d in distractors:
        words = stems(d)
        if not any(words <= stems(o) or stems(o) <= words for o in [answer] + kept):
            kept.append(d)
    return kept


def _shuffle(correct: str, distractors: list[str], rng: random.Random) -> tuple[list[str], int]:
    options = [correct] + distractors[:3]
    rng.shuffle(options)
    return options, options.index(correct)


def _points_away(text: str) -> bool:
    """A word that points at the surroundings (see ``_DEICTIC``); a relative or
    complementiser "that" ("a type that can help", "its advantage is that ...") does not."""
    for m in _DEICTIC.finditer(text):
        if m.group(1).lower() == "that" and not _POINTING_THAT.search(text[: m.start()]):
            continue
        return True
    return False


def _starts_with_verb(rest: str) -> bool:
    verb = re.match(r"^(?:[a-z]+ly\s+)?([a-z]+s)\b", rest)  # "simply puts", "makes"
    return bool(_COPULA.match(rest) or verb and not verb.group(1).endswith("ss"))


def _own_subject(text: str, answer: str, family: str, under_label: bool) -> str | None:
    """The predicate of a line under a label or heading that names its subject in other
    words: the answer's own words ("Momentum helps ..." under "Gradient descent with
    momentum", "The momentum algorithm works ..."), "this"/"these" + a word of the family or
    the answer ("This algorithm speeds up ..."), or, directly under a label, "it"."""
    words = text.split()
    allowed = _words(answer) | _words(family)
    for k in range(1, min(5, len(words) - 2) + 1):
        head = re.sub(r"^(?:the|an?)\s+", "", " ".join(words[:k]), flags=re.IGNORECASE)
        rest = " ".join(words[k:])
        if not _starts_with_verb(rest):
            continue
        first = head.split()[0].lower() if head else ""
        said = _words(head)
        if first in ("this", "these") and len(head.split()) == 2 and said and said <= allowed:
            return rest
        if under_label and head.lower() == "it":
            return rest
        if said and said <= allowed and said & _words(answer) and not _points_away(head):
            return rest
    return None


def _strip_subject(text: str, vocab: Vocabulary, name: str) -> str | None:
    """The line with its subject removed, as the predicate of "Which of these ...?"; a
    sub-bullet that starts with a verb already is one (its parent is the subject)."""
    if vocab.subject(text) == name:
        m = re.match(r"^(?:the |an? )?", text, re.IGNORECASE)
        start, end, _ = vocab.spans(text[m.end():])[0]
        rest = re.sub(r"^'s\s+|^(?:[a-z]+\s+){1,2}(?=%s)" % _COPULA.pattern[1:], "",
                      text[m.end() + end:].lstrip())
        verb = re.match(r"^(?:[a-z]+ly\s+)?([a-z]+s)\b", rest)  # "simply puts", "makes"
        return rest if _COPULA.match(rest) or verb and not verb.group(1).endswith("ss") \
            else None
    return text if _COPULA.match(text) and not vocab.find(text[:1]) else None


class QuestionWriter:
    """Rule-based questions from the lines of retrieved passages (see the module doc)."""

    def __init__(self, vocab: Vocabulary, vectors: VectorCache, rng: random.Random,
                 chunks: list[Chunk], params: QuizSettings):
        self.vocab = vocab
        self.params = params
        self.vectors = vectors
        self.rng = rng
        self.chunks = chunks
        self._sections: dict[str, dict[str, list[tuple[str, Chunk]]]] | None = None
        self._labels_cache: dict[tuple[str, str], dict[str, list[tuple[str, Chunk]]]] = {}

    def lines(self, hits: list[Hit]) -> list[_Line]:
        """Fact lines of the passages with what each is about.

        In order of preference: a short outline label it sits under whose siblings are
        labels too ("Weighted:", "Failover:" under one parent: alternatives of one kind by
        construction); the name it starts with; for a sub-bullet naming nothing, its
        parent's name; or the section heading when the sibling headings are alternatives."""
        out = []
        for i, hit in enumerate(hits):
            units = split_units(hit, i)
            heading = hit.chunk.heading.split(" > ")[-1] if hit.chunk.heading else ""
            headings = self.heading_family(hit.chunk)
            raw = hit.chunk.text.split("\n")
            for u in units:
                if not u.selectable or u.text.endswith("?") or len(u.text) > 220 \
                        or _FORMULA.search(u.text):
                    continue
                written = raw[u.line - hit.chunk.start_line].lstrip()
                if written.startswith(">") or BOUND.search(u.text) \
                        or SCENARIO_LINE.match(strip_markup(written.lstrip("-*+ "))):
                    continue  # an exam scenario's set-up or its write-up states no fact
                nxt = next((x.text for x in units if x.line > u.line and x.selectable), "")
                line = _Line(u.text, "", hit.chunk, u.line, after=nxt)
                labels = self._labels(units, u, hit.chunk)
                if labels:
                    line.subject, line.family, line.alternatives, line.own = labels
                    out.append(line)
                    continue
                line.subject = self.vocab.subject(u.text) or ""
                top = u.parent is None and not _indented(hit.chunk, u.line)
                if headings and top and (not self.vocab.find(u.text) or line.subject and
                                         line.subject == self.vocab.subject(heading)):
                    # a top-level line of a section that is one of several alternatives
                    # (sibling headings): the heading is the answer
                    line.named, line.subject = line.subject, _label(heading)
                    line.family, line.alternatives, line.own = headings
                    line.from_heading = True
                elif not line.subject and not self.vocab.find(u.text):
                    line.subject = self.vocab.subject(lead_of(units, u, depth=1)) or ""
                if not line.subject and top and heading:
                    # a section's own line that names nothing is about the section
                    # ("Route 53 Health Checks": "Health checks can monitor servers")
                    line.subject = _label(heading)
                if line.subject:
                    out.append(line)
        return out

    def _labels(self, units, u, chunk: Chunk) -> tuple[str, str, dict, list[str]] | None:
        """(label, family, alternatives, the label's own lines) when ``u`` sits under a short
        label with >= 3 sibling labels, each with lines under it. Top-level labels are
        gathered over the whole section (one section can span several chunks)."""
        if u.parent is None or not _is_label(units[u.parent].text):
            return None
        parent = units[u.parent]
        grand = parent.parent
        if grand is None:
            pool = self._section_labels(chunk)
        else:
            pool = {_label(x.text): [(units[c].text, chunk) for c in _below(units, k)]
                    for k, x in enumerate(units)
                    if x.parent == grand and _is_label(x.text) and x.children}
        own = _label(parent.text)
        alternatives = {k: v for k, v in pool.items() if k != own}
        if len(alternatives) == 2:
            alternatives.update(self._more_of_kind(own, alternatives))
        if len(alternatives) < 3:
            return None
        family = _label(units[grand].text) if grand is not None else \
            _label(chunk.heading.split(" > ")[-1])
        return own, family, alternatives, [t for t, _ in pool.get(own, [])]

    def _more_of_kind(self, own: str, alternatives: dict) -> dict[str, list[tuple[str, Chunk]]]:
        """Three labels are two alternatives: names the notes list with this one elsewhere
        (its vocabulary family, each said of in two lines) make up the fourth option."""
        name = self.vocab.subject(own)
        if not name:
            return {}
        taken = [own] + list(alternatives)
        out = {}
        for other in self.vocab.siblings(name, self.vectors, self.params.kind_min):
            if self.vocab.described(other) and not self.vocab.general(other) and not any(
                    _same_thing(other, t) or _words(other) <= _words(t)
                    or _words(t) <= _words(other) for t in taken + list(out)):
                out[other] = self._about(other)
        return out

    def _section_labels(self, chunk: Chunk) -> dict[str, list[tuple[str, Chunk]]]:
        """Top-level labels (with their sub-bullets) of every chunk of this heading."""
        key = (chunk.file, chunk.heading)
        if key not in self._labels_cache:
            found: dict[str, list[tuple[str, Chunk]]] = {}
            for c in self.chunks:
                if (c.file, c.heading) != key:
                    continue
                units = split_units(_hit(c), 0)
                for k, x in enumerate(units):
                    if x.parent is None and _is_label(x.text) and x.children:
                        found.setdefault(_label(x.text), []).extend(
                            (units[d].text, c) for d in _below(units, k))
            self._labels_cache[key] = found
        return self._labels_cache[key]

    def heading_family(self, chunk: Chunk) -> tuple[str, dict, list[str]] | None:
        """(parent heading, {sibling heading: its lines}, the section's own lines) when the
        chunk's section has >= 3 sibling sections under one parent heading."""
        path = (chunk.heading or "").split(" > ")
        if len(path) < 2:
            return None
        parent = " > ".join(path[:-1])
        found = self._heading_sections().get(parent, {})
        own = path[-1]
        alternatives = {_label(h): lines for h, lines in found.items()
                        if h != own and _is_label(h, 5)}
        if len(alternatives) < 3 or not _is_label(own, 5):
            return None  # long headings are sections, not alternatives of one kind
        return _label(path[-2]), alternatives, [t for t, _ in found.get(own, [])]

    def _heading_sections(self) -> dict[str, dict[str, list[tuple[str, Chunk]]]]:
        if self._sections is None:
            self._sections = defaultdict(dict)
            for chunk in self.chunks:
                path = (chunk.heading or "").split(" > ")
                if len(path) < 2 or not _is_topic_heading(path[-1], chunk.title):
                    continue
                lines = [(u.text, chunk) for u in split_units(_hit(chunk), 0) if u.selectable]
                self._sections[" > ".join(path[:-1])].setdefault(path[-1], []).extend(lines)
        return self._sections

    def which_fits(self, line: _Line) -> tuple[str, list[str], list[str]] | None:
        """(stem, answer + distractors, explanation lines) or None when it would be unfair.

        The stem is the line's own predicate ("Which of these can be set to default,
        continent, or country?"); a line that is not one (a verbless bullet, an outline
        fragment with a colon or dash) makes no question, since quoting it after "which
        does this describe" is not a question a student can read on its own."""
        if is_negative(line.text) or self.vocab.general(line.subject) \
                or not line.alternatives:
            # ambiguous, about the whole subject, or with no outline siblings to offer as
            # options (judged blind, names from elsewhere in the notes made 2 good of 24)
            return None
        predicate = _strip_subject(line.text, self.vocab, line.named or line.subject)
        reworded = predicate is None and bool(line.alternatives)
        if reworded:
            predicate = _own_subject(line.text, line.subject, line.family,
                                     not line.from_heading)
        if not predicate or _points_away(predicate) or len(content_terms(predicate)) < 3 \
                or ":" in predicate \
                or len(clauses(predicate)) > 1:
            return None
        if self.vocab.mentions(predicate, line.named or line.subject) or \
                stems(line.subject) & stems(predicate):
            return None  # the stem would name (a word of) the answer, in any form
        where = f"In your notes on {line.family}" if line.family else "According to your notes"
        predicate = predicate[0].lower() + predicate[1:] if predicate[1:2].islower() \
            else predicate
        stem = f"{where}, which of these {_voice(predicate).rstrip('.;:!')}?"
        own = self._kind([line.text] + line.own)
        alike = {k: float(self._kind([t for t, _ in line.alternatives[k][:12]] or [k]) @ own)
                 for k in line.alternatives}
        # a line naming its subject in other words leans on the outline: its labels must
        # be things of one kind, not headings of different facets ("Zones", "Rules")
        pool = sorted((k for k in alike if not (reworded or line.from_heading)
                       or alike[k] >= self.params.kind_min),
                      key=lambda k: -alike[k])
        told = stems(predicate)
        pool = [s for s in pool if not self.vocab.general(s) and not stems(s) & told]
        if len(pool) < 3:
            return None
        pvec = self.vectors.encode([predicate])[0]
        asked = {t for t in told - _words(line.family) if len(t) > 2}
        picked: list[tuple[str, str, float, Chunk]] = []
        for name in pool[:12]:
            if any(_same_thing(name, p) for p in [line.subject] + [p[0] for p in picked]):
                continue
            said = [tc for tc in line.alternatives[name][:40]
                    if len(content_terms(tc[0])) >= 3] or line.alternatives[name][:40]
            if not said:
                continue
            sims = self.vectors.encode([t for t, _ in said]) @ pvec
            best = int(np.argmax(sims))
            shared = max(len(asked & stems(t)) for t, _ in said) / max(len(asked), 1)
            if sims[best] >= self.params.same_as_answer or shared >= self.params.same_terms:
                continue  # the notes say much the same about it: it would be right too
            picked.append((name, said[best][0], float(sims[best]), said[best][1]))
            if len(picked) == 3:
                break
        if len(picked) < 3:
            return None
        picked.sort(key=lambda p: -p[2])
        tempting = picked[0]
        scope = f"your notes on {line.family}" if line.family else "your notes"
        explanation = [
            f"{line.subject} is right: {scope} say of {line.subject} \"{as_sentence(line.text)}\"",
            f"{tempting[0]} is the tempting choice, but the notes say of it "
            f"\"{as_sentence(tempting[1])}\" ({Passage.from_chunk(tempting[3]).location})"]
        return stem, [line.subject] + [p[0] for p in picked], explanation

    def _kind(self, lines: list[str]) -> np.ndarray:
        """What a thing is in these notes: the mean vector of the lines about it."""
        mean = self.vectors.encode(lines[:12]).mean(axis=0)
        return mean / (np.linalg.norm(mean) or 1.0)

    def _about(self, name: str) -> list[tuple[str, Chunk]]:
        """The lines about a name: those that start with it (what the notes say it does),
        else the ones that merely mention it."""
        said = self.vocab.lines.get(name, [])
        return [tc for tc in said if self.vocab.subject(tc[0]) == name] or said

    def true_statement(self, line: _Line, swap: "_Swap | None"
                       ) -> tuple[str, list[str], list[str]] | None:
        """A line with a number: the distractors say three other values the notes use, and
        the explanation says what one of them is in the notes (the figure it is confused with)."""
        if swap is None or len(swap.fills) < 3:
            return None
        stem = f"Which statement about {line.subject} is true according to your notes?"
        explanation = [self._notes_say(line), swap.confused,
                       f"The other options change the figure ({', '.join(swap.fills)} instead "
                       f"of {swap.figure})."]
        return stem, [as_sentence(line.text)] + swap.variants, explanation

    def true_false(self, line: _Line, swap: "_Swap | None") -> tuple[str, bool, list[str]] | None:
        """A line that reads as a sentence on its own as a true-false statement: as the notes
        say it, or made false (chosen at random): its figure changed to one they give for
        something else, or, for a line with no figure, its verb denied ("can" -> "cannot")."""
        text = line.text
        # The statement is the whole stem, so it must read as a sentence on its own: the line
        # names its subject itself and is no outline fragment (judged unclear: "AWS Lambda:
        # Currently - 15 minute execution limit").
        if not _stands_alone(text) or _indented(line.chunk, line.line) or not (
                self.vocab.mentions(" ".join(text.split()[:5]), line.subject)
                or _words(line.where) & _words(text)):
            return None  # about its subject or its section ("Pooling layers": "Max pooling")
        false = swap.variants[0] if swap else _flipped(text)
        if false is None:
            return None
        said = self._notes_say(line)
        # what the notes go on to say teaches more than the statement it judges
        nxt = line.after
        if len(content_terms(nxt)) >= 4 and not nxt.endswith(":"):
            said += f" They go on: \"{as_sentence(nxt)}\""
        said = said[0].lower() + said[1:]
        # the section it comes from gives the statement its context ("VPC Subnets")
        where = line.where
        prompt = f"True or false, according to your notes{f' on {where}' if where else ''}? "
        if self.rng.random() < 0.5:
            return f"{prompt}{as_sentence(text)}", True, [f"True: {said}"]
        why = swap.confused if swap else "The statement turns what they say the other way."
        return f"{prompt}{as_sentence(false)}", False, [f"False: {said}", why]

    def _notes_say(self, line: _Line) -> str:
        said = as_sentence(line.text)
        return f"Your notes on {line.where} say \"{said}\"" if line.where else \
            f"Your notes say \"{said}\""

    def figure_swap(self, line: _Line, unit_values: dict[str, dict[str, tuple[str, Chunk]]]
                    ) -> "_Swap | None":
        """Up to three copies of the line with its one figure changed to values the notes use
        with the same unit for the most similar other things (None: no such figure or
        value)."""
        if line.from_heading and not self.vocab.subject(line.subject):
            return None  # a figure in a section about no one name may belong to anything
        inside = [(a, b) for a, b, _ in self.vocab.spans(line.text)]
        found = [m for m in _NUMBER.finditer(line.text) if m.group(3)
                 and not any(a <= m.start() < b for a, b in inside)]
        if len(found) != 1 or is_negative(line.text) or _points_away(line.text):
            return None
        m = found[0]
        number, unit = m.group(1), (m.group(3) or "").lower()
        if unit in STOP:
            return None  # "0.9 is recommended": a number without a unit
        seen = unit_values.get(unit, {})
        values = sorted(v for v in seen if v != number and v not in line.text)
        self.rng.shuffle(values)
        if not values or len(unit) < 2:
            return None
        # The figures the notes give for the most similar things are the tempting ones; one
        # said of a line much like this one could be this fact in other notes (also right).
        said = {v: _sentence_with(seen[v][0], v) for v in values[:24]}
        sims = self.vectors.encode(list(said.values())) @ self.vectors.encode([line.text])[0]
        fills = [v for sim, v in sorted(zip(sims.tolist(), said), reverse=True)
                 if sim < self.params.same_as_answer][:3]
        if not fills:
            return None
        # the stem names the subject: an option with it glued on read as a fragment
        variants = [as_sentence(line.text.replace(m.group(0), f"{v}{m.group(2)}{m.group(3)}",
                                                  1)) for v in fills]
        confused = (f"{fills[0]}{m.group(2)}{m.group(3)} is a figure they give for "
                    f"something else: \"{as_sentence(said[fills[0]])}\" "
                    f"({Passage.from_chunk(seen[fills[0]][1]).location})")
        return _Swap(variants, number, fills, confused)

    def _approaches(self, text: str) -> list[str]:
        """Names in a line, each with the capitalised words right after it ("Docker" +
        "Secrets"): the approach a rejecting line talks about."""
        out = []
        for start, end, name in self.vocab.spans(text):
            more = re.match(r"(?:\s+[A-Z][\w-]*)+", text[end:])
            out.append(text[start:end + more.end()] if more else name)
        return list(dict.fromkeys(out))

    def harvested(self, chunks: list[Chunk]) -> list[tuple[str, str, list[str], Chunk, str]]:
        """The notes' own scenarios: a prompt line followed by its solution line; distractors
        are the approaches the same section names in lines that rule them out."""
        out = []
        sections: dict[tuple[str, str], list[Chunk]] = defaultdict(list)
        for c in chunks:
            sections[(c.file, c.heading.split(" > ")[0])].append(c)
        for (_, heading), group in sections.items():
            group.sort(key=lambda c: c.start_line)
            prompt = solution = None
            rejected: list[str] = []
            for chunk in group:
                for raw in chunk.text.split("\n"):
                    body = _plain(raw)
                    quoted = raw.lstrip().startswith(">")
                    if prompt is None and len(body) > 60 and (quoted or _LABELLED.match(body)):
                        prompt = (_LABELLED.sub("", body), chunk)
                    elif prompt and solution is None and _SOLUTION.match(body):
                        solution = _SOLUTION.sub("", body)
                    elif prompt and is_negative(body):
                        rejected += [n for n in self._approaches(body) if n not in rejected]
            if not prompt or not solution:
                continue
            first = sentences(solution)[0]
            named = list(dict.fromkeys(self.vocab.find(first)))
            if not named:
                continue
            answer = "Use " + " with ".join(named[:2])
            said = set(answer.lower().split())
            distractors = [f"Use {n}" for n in rejected
                           if n not in named and not set(n.lower().split()) <= said]
            for n in self.vocab.siblings(named[0], self.vectors, self.params.kind_min):
                if n not in named and f"Use {n}" not in distractors and \
                        self.vocab.described(n) and not self.vocab.general(n) and \
                        not set(n.lower().split()) <= said:
                    distractors.append(f"Use {n}")
            distractors = _distinct(answer, distractors)
            if len(distractors) < 3:
                continue
            # A scenario that only describes the situation still needs its question.
            stem = prompt[0] if prompt[0].rstrip().endswith("?") else \
                f"{as_sentence(prompt[0])} Which approach do your notes give as the solution?"
            out.append((stem, answer, distractors[:3], prompt[1],
                        f"Your notes' solution: {as_sentence(solution)}"))
        return out


# --- making quizzes ------------------------------------------------------------------------
@dataclass
class QuizStats:
    candidates: int = 0
    valid: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def validity_rate(self) -> float:
        return self.valid / self.candidates if self.candidates else 0.0


class QuizMaker:
    """Makes N validated questions on a topic phrase (or across the notes, weak topics first)."""

    def __init__(self, tutor, progress=None, seed: int | None = None):
        self.tutor = tutor
        self.search = tutor.search
        self.index = tutor.search.index
        self.progress = progress
        self.rng = random.Random(seed)
        self.validator = Validator(self.index.embedder, tutor.settings.quiz)
        self.vectors = self.validator.vectors
        self.stats = QuizStats()
        self._vocab: Vocabulary | None = None
        self._writer: QuestionWriter | None = None
        self._units: dict[str, dict[str, tuple[str, Chunk]]] | None = None
        self.asked: set[str] = set()

    @property
    def vocab(self) -> Vocabulary:
        if self._vocab is None:
            self._vocab = Vocabulary.build(self.index.chunks().values())
        return self._vocab

    @property
    def writer(self) -> "QuestionWriter":
        if self._writer is None:
            self._writer = QuestionWriter(self.vocab, self.vectors, self.rng,
                                          list(self.index.chunks().values()),
                                          self.tutor.settings.quiz)
        return self._writer

    def unit_values(self) -> dict[str, dict[str, tuple[str, Chunk]]]:
        """Numbers the notes write with each unit ("15 minutes", "4KB"), for distractors,
        each with the first line that says it (to show what that figure is about)."""
        if self._units is None:
            found: dict[str, dict[str, tuple[str, Chunk]]] = defaultdict(dict)
            for chunk in self.index.chunks().values():
                for raw in chunk.text.split("\n"):
                    for m in _NUMBER.finditer(raw):
                        if m.group(3):
                            found[m.group(3).lower()].setdefault(m.group(1),
                                                                 (_plain(raw), chunk))
            self._units = dict(found)
        return self._units

    def passages(self, topic: str | None) -> list[Hit]:
        """The passages a topic phrase retrieves; an uncovered topic is a one-line error."""
        if not topic:
            return self._across_notes()
        topic = " ".join(topic.split())
        hits = self._headed(topic) + self.search.hits(topic, 12)
        hits = list({h.id: h for h in hits}.values())
        best = max((h.dense for h in hits), default=0.0)
        df = self.index.term_df()
        words = stems(topic)
        unknown = sorted(t for t in words if not df.get(t))
        if not hits or best < self.tutor.settings.retrieval.abstain.threshold \
                or len(unknown) * 2 > len(words):  # most of its words never occur
            names = ", ".join(t.name for t in list_topics(self.index)[:8])
            missing = f" (they never mention {', '.join(unknown)})" if unknown else ""
            raise QuizError(f"Your notes don't cover {topic!r}{missing}; try a topic they do, "
                            f"e.g. {names} (see `study topics`).")
        return hits

    def _headed(self, topic: str, limit: int = 16) -> list[Hit]:
        """Chunks under a heading whose every word the topic phrase contains ("RMSprop",
        "Optimization algorithms" for "Optimization algorithms: momentum, RMSprop and Adam")."""
        wanted = stems(topic)
        found = []
        for chunk in sorted(self.index.chunks().values(), key=lambda c: (c.file, c.start_line)):
            parts = [p for p in (chunk.heading or "").split(" > ")
                     if p and _is_topic_heading(p, chunk.title)]
            named = [len(stems(p)) for p in parts if stems(p) and stems(p) <= wanted]
            if named:
                found.append((-max(named), chunk))
        # the most specific heading first: "Route 53 Health Checks" before all of "Route 53"
        found.sort(key=lambda f: f[0])
        return [_hit(c) for _, c in found[:limit]]

    def _across_notes(self) -> list[Hit]:
        chunks = list(self.index.chunks().values())
        self.rng.shuffle(chunks)
        if self.progress:
            weak = {t.lower() for t in self.progress.weak_topics()}
            chunks.sort(key=lambda c: _topic_of(c).lower() not in weak)
        return [_hit(c) for c in chunks[:40]]

    def candidates(self, topic: str | None) -> list[Question]:
        """Candidate questions from the topic's passages, most on-topic first, kinds mixed."""
        hits = self.passages(topic)
        writer = self.writer
        lines = writer.lines(hits)
        topic_terms = _words(topic or "")
        if topic and lines:
            tvec = self.vectors.encode([topic])[0]
            sims = self.vectors.encode(
                [f"{ln.section}: {ln.text}" for ln in lines]) @ tvec
            # A line must share two of the topic's words (one for a one-word topic) through
            # its headings, its text or its subject: "telescope mirror coatings" is not any
            # line under a "Telescopes" heading.
            needed = min(2, len(topic_terms))
            names = self._topic_names(topic)
            for ln, sim in zip(lines, sims):
                named = len(topic_terms & _words(f"{ln.chunk.heading} {ln.family} "
                                                 f"{ln.subject} {ln.text}"))
                # ...one of them its own: a parent heading alone makes its neighbours on
                # topic (judged blind: "deep learning enables new art" for CNN padding)
                here = topic_terms & _words(ln.section)
                own = here | topic_terms & _words(f"{ln.subject} {ln.text}")
                # ...and the words that name the topic (``_TopicNames``)
                if not names.named_by(own, f"{ln.section}\n{ln.subject}\n{ln.text}"):
                    own = set()
                # a section named after the topic is more on topic than its parent's others
                ln.topic_sim = float(sim) + 0.1 * min(named, 2) \
                    + 0.2 * len(here) / len(topic_terms) if named >= needed and own else 0.0
            lines = [ln for ln in lines if ln.topic_sim >= self.tutor.settings.quiz.topic_min]
            lines.sort(key=lambda ln: -ln.topic_sim)
        by_kind: dict[str, list[Question]] = defaultdict(list)
        chunks = [h.chunk for h in hits]
        for prompt, answer, distractors, chunk, why in writer.harvested(
                self._sections_of(chunks)):
            options, idx = _shuffle(answer, distractors, self.rng)
            by_kind["harvested"].append(Question(
                id=_qid("harvested", prompt), topic=topic or _topic_of(chunk) or "notes",
                stem=prompt, options=options, answer_index=idx,
                explanation=f"{answer} is right. {why}", passage=Passage.from_chunk(chunk),
                source="harvested"))
        units = self.unit_values()
        for ln in lines:
            # One question per line (judged blind: a statement and a which-fits question on
            # one line test one fact twice), the kind judged best first.
            swap = writer.figure_swap(ln, units)
            if (made := writer.true_statement(ln, swap)) is not None:
                kind = "true-statement"
            elif self._about_topic(ln, topic_terms) and (
                    told := writer.true_false(ln, swap)) is not None:
                stem, true, why = told
                by_kind["true-false"].append(Question(
                    id=_qid("true-false", ln.text, stem), topic=topic or _topic_of(ln.chunk)
                    or ln.subject, stem=stem, options=TRUE_FALSE, answer_index=0 if true else 1,
                    explanation=" ".join(as_sentence(w) for w in why),
                    passage=Passage.from_chunk(ln.chunk), source="true-false"))
                continue
            elif (made := writer.which_fits(ln)) is not None:
                kind = "which-fits"
            else:
                continue
            stem, opts, why = made
            options, idx = _shuffle(opts[0], opts[1:], self.rng)
            by_kind[kind].append(Question(
                id=_qid(kind, ln.text, stem), topic=topic or _topic_of(ln.chunk) or
                ln.subject, stem=stem, options=options, answer_index=idx,
                explanation=" ".join(as_sentence(w) for w in why),
                passage=Passage.from_chunk(ln.chunk), source=kind))
        # A denied definition ("X is not a Y") was judged trivial: other statements first.
        by_kind["true-false"].sort(key=lambda q: bool(_DEFINES.match(q.statement)))
        # Judged blind (evals/judging/): statements about figures were good most often.
        order = ["true-statement", "true-false", "harvested", "which-fits"]
        out: list[Question] = []
        while any(by_kind[k] for k in order):
            for k in order:
                if by_kind[k]:
                    out.append(by_kind[k].pop(0))
        return out

    def _topic_names(self, topic: str) -> _TopicNames:
        parts = [p for p in _TOPIC_LIST.split(topic) if p.strip()]
        listed = len(parts) > 1
        naming = set().union(*(self._naming_words(_words(p)) for p in parts))
        if not listed:  # "Intelligent-Tiering" is written as two words too
            naming = {t for t in naming if "-" not in t} or naming
        return _TopicNames(listed, frozenset(naming), frozenset(term_pairs(topic)),
                           None if listed else _acronym(topic))

    def _naming_words(self, terms: set[str]) -> set[str]:
        """The topic's words that name it rather than its field: those fewer than
        ``quiz.common_share`` of the passages use (at least the rarest one)."""
        df = self.index.term_df()
        count = {t: df.get(t, 0) for t in terms}
        if not count:
            return set()
        common = self.tutor.settings.quiz.common_share * max(len(self.index.chunks()), 1)
        return {t for t, n in count.items() if n <= max(common, min(count.values()))}

    def _about_topic(self, line: _Line, topic_terms: set[str]) -> bool:
        """A statement is about the topic unless it names another thing first (judged blind:
        "Lambda is meant to retain data" under "Kinesis data streams")."""
        name = self.vocab.subject(line.text)
        if not topic_terms or name is None or self.vocab.general(name):
            return True  # no name, or one for the whole subject ("AWS Global Accelerator")
        return bool(topic_terms & set().union(*(_words(f) for f in self.vocab.forms(name))))

    def _sections_of(self, chunks: list[Chunk]) -> list[Chunk]:
        """Every chunk of the top-level sections the passages belong to (a scenario's prompt
        and its solution may sit in neighbouring chunks)."""
        wanted = {(c.file, c.heading.split(" > ")[0]) for c in chunks}
        return [c for c in self.index.chunks().values()
                if (c.file, c.heading.split(" > ")[0]) in wanted]

    def generate(self, chunk: Chunk, topic: str, attempts: int = 2) -> Question | None:
        """One question from a configured generator (structured output), or None."""
        prompt = (
            "Write one multiple-choice exam question that tests this note passage. The stem "
            "must be answerable without the passage and must not contain the answer. Exactly "
            "one option must be correct according to the passage; the other three must be "
            f"wrong according to it.\n\nPassage ({chunk.heading}):\n{chunk.text}")
        try:
            structured = self.tutor.chat_model().with_structured_output(GeneratedQuestion)
        except (StudyragError, NotImplementedError) as exc:
            log.info("No structured output from the generator (%s); rules only.", exc)
            return None
        for _ in range(attempts):
            try:
                got = structured.invoke(prompt)
                got = got if isinstance(got, GeneratedQuestion) else \
                    GeneratedQuestion.model_validate(got)
                return Question(id=_qid("generated", got.stem), topic=topic, stem=got.stem,
                                options=got.options, answer_index=got.answer_index,
                                explanation=got.explanation,
                                passage=Passage.from_chunk(chunk), source="generated")
            except (ValidationError, ValueError, TypeError) as exc:
                log.info("Generated question rejected: %s", exc)
            except StudyragError as exc:
                log.warning("Generator failed (%s); using questions from the notes.", exc)
                return None
        return None

    def make(self, topic: str | None = None, n: int = 5) -> list[Question]:
        """N valid questions; every candidate is validated, failures dropped and counted."""
        if n < 1:
            raise InputError("Ask for at least one question (--n 1).")
        pool = self.candidates(topic)
        if writes(self.tutor.backend):
            for hit in self.passages(topic)[: n]:
                q = self.generate(hit.chunk, topic or _topic_of(hit.chunk))
                if q:
                    pool.insert(0, q)
        out: list[Question] = []
        per_answer: Counter = Counter()
        per_passage: Counter = Counter()
        for q in pool:
            if len(out) == n:
                break
            where = (q.passage.file, q.passage.start_line)
            fact = q.fact
            if q.id in self.asked or per_answer[fact] or per_passage[where] >= 2:
                continue  # a set tests several things, not one passage or answer twice
            self.stats.candidates += 1
            problems = self.validator.validate(q)
            if problems:
                for p in problems:
                    key = p.split(" (")[0].split("'")[0].strip()
                    self.stats.rejected[key] = self.stats.rejected.get(key, 0) + 1
                continue
            self.stats.valid += 1
            self.asked.add(q.id)
            per_answer[fact] += 1
            per_passage[where] += 1
            out.append(q)
        if not out:
            raise QuizError(f"Your notes have too little on {topic!r} to make a question.")
        return out


def grade(question: Question, chosen: int) -> tuple[bool, str]:
    """Right or wrong, with the explanation and the cited passage."""
    ok = chosen == question.answer_index
    head = "Correct!" if ok else f"Not quite: the answer is {question.letter}) {question.answer}."
    return ok, f"{head} {question.explanation} [1] {question.passage.location}"
