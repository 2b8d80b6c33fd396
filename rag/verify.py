"""Support check: is an answer sentence backed by the passages it cites?

The score combines three measurable signals against the cited evidence:

* lexical coverage — the share of the sentence's content words found in the evidence
  (compared as stems, the stemmer BM25 uses: ``encrypts``/``encryption`` match);
* semantic similarity — the best cosine between the sentence and one evidence line
  (the index's own embedder, so nothing new is loaded);
* polarity — a negation in the sentence but not in the evidence line it matches best
  (or the other way round) costs a fixed penalty.

Hard rules cap the score at 0: every number in the sentence (unit-normalised: ``15-minute`` =
``15 minutes``, ``10GB`` = ``10 GB``, ``fifteen`` = ``15``; with its base: ``3,000 IOPS per
volume`` is not ``per GB``) and every name it states (acronym, CamelCase, capitalised word) must
appear in the evidence, and no clause or "and" part of it may be missing from the evidence
entirely. A sentence that opens with its passage's own heading ("ECS Cluster: ...", the
extractive answer's lead-in) is checked after it: the heading names the topic, not a claim.
``verify.support_threshold`` (calibrated on ``evals/datasets/verifier_pairs.jsonl`` by
``study eval-verifier``) turns the score into a verdict.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rag.config import VerifySettings
from rag.quantities import NUMBER_WORDS
from rag.text import (HEADING, NEGATION, clauses, content_terms, mentions, names, negations,
                      sentences, stem, strip_markup)

# --- numbers ---------------------------------------------------------------------------
_NUM = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?![\d])")
_NUM_WORD = re.compile(r"\b(" + "|".join(NUMBER_WORDS) + r")\b", re.IGNORECASE)


_RATE = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?:\s*[A-Za-z%]+(?:/s)?)??"
                   r"(?:\s+[A-Za-z]+){0,2}?\s*(?:\s+per\s+|/)"
                   r"(?!(?:s|sec|second|seconds)\b)([A-Za-z]+)\b")


def rates(text: str) -> set[tuple[float, str]]:
    """(quantity, per what) pairs: '3 IOPS/GB' -> (3, 'gb'), '2,375 MB/s per instance' ->
    (2375, 'instance'); a per-second unit ('MB/s') is a unit, not the rate's base."""
    return {(float(m.group(1).replace(",", "")), m.group(2).lower().rstrip("s"))
            for m in _RATE.finditer(text)}


def numbers(text: str) -> set[float]:
    """Every quantity in ``text`` as a value: '15-minute', '15 minutes', 'fifteen' -> 15."""
    values = {float(m.group(1).replace(",", "")) for m in _NUM.finditer(text)}
    values |= {float(NUMBER_WORDS[m.group(1).lower()]) for m in _NUM_WORD.finditer(text)}
    return values


# "No, X is Y": the answer word replies to the question; the claim's polarity is in the rest.
_ANSWER_WORD = re.compile(r"^\s*(?:yes|no)\b[,.!:;]?\s*", re.IGNORECASE)


def new_terms(sentence: str, sources: Sequence[str]) -> list[str]:
    """Content words of ``sentence`` that none of ``sources`` has (as stems, so inflections
    match). Numbers and negations are the hard rules' and polarity's business."""
    allowed = _keys("\n".join(sources))
    return [t for t in content_terms(_ANSWER_WORD.sub("", sentence))
            if stem(t) not in allowed and not t.replace(".", "").isdigit()
            and not NEGATION.fullmatch(t)]


def restates(sentence: str, quotes: Sequence[str], share: float = 0.8) -> bool:
    """Does ``sentence`` only repeat one of ``quotes`` (its words nearly all from that quote
    and covering most of it)? Such a lead adds nothing to the quotes that follow it."""
    keys = _keys(_ANSWER_WORD.sub("", sentence))
    for quote in quotes:
        theirs = _keys(quote)
        if keys and theirs and len(keys & theirs) >= share * max(len(keys), len(theirs)):
            return True
    return False


_YES_NO_QUESTION = re.compile(r"^\s*(?:is|are|can|could|does|do|did|will|would|should|has|have|"
                              r"was|were|may|must)\b", re.IGNORECASE)


def fit_answer_word(sentence: str, question: str) -> str:
    """Drop a leading Yes/No unless the question asks yes or no (the small model copies the
    word from its worked example: "No, the retention period is 35 days")."""
    if _YES_NO_QUESTION.match(question):
        return sentence
    rest = _ANSWER_WORD.sub("", sentence)
    return rest[:1].upper() + rest[1:] if rest else sentence


def lead_problem(sentence: str, question: str, quotes: Sequence[str],
                 headings: Sequence[str] = ()) -> str:
    """Why a generated lead may not stand before the quoted note sentences ("" if it may).

    On top of the support check: it must be a statement, add no word that is not in the
    quotes, their headings or the question, not merely repeat a quote, answer something (a
    Yes/No, a number, a negation or two content words the question does not have), and take
    everything beyond the question's own words from one quote, so that it cannot join two
    facts into a third.
    """
    if sentence.rstrip().endswith((":", "?", ",")):
        return "not a statement"
    novel = new_terms(sentence, [*quotes, question, *headings])
    if novel:
        return "words not in the notes: " + ", ".join(novel)
    if restates(sentence, quotes):
        return "repeats a quote"
    claim = _ANSWER_WORD.sub("", sentence)
    own = _keys(claim) - _keys(question) - _keys("\n".join(headings))
    answers = (claim != sentence or bool(numbers(claim) - numbers(question))
               or negations(claim) > negations(question) or len(own) >= 2)
    if not answers:
        return "does not answer: repeats the question"
    if not any(own <= _keys(q) and numbers(claim) <= numbers(q) for q in quotes):
        return "joins facts from different note sentences"
    return ""


_AND = re.compile(r"\s+and\s+", re.IGNORECASE)


def _flat(text: str) -> str:
    return " ".join(text.lower().rstrip(".").split())


def sentence_clauses(text: str) -> list[str]:
    """The sentences and clauses of ``text`` that carry content words (claims joined by "and
    also"/"and can ..." are separate clauses)."""
    return [c for s in sentences(_ANSWER_WORD.sub("", text)) for c in clauses(s, fine=True)
            if content_terms(c)]


def unbacked_parts(clauses: Sequence[str], evidence_keys: set[str]) -> list[str]:
    """Parts of a sentence (its ``sentence_clauses``, split again at every "and") with two or
    more content words of which the evidence has none: "... and is the cheapest option"."""
    parts = (p.strip() for c in clauses for p in _AND.split(c))
    return [p for p in parts if len(_keys(p)) >= 2 and not _keys(p) & evidence_keys]


# --- lexical ---------------------------------------------------------------------------
def _keys(text: str) -> set[str]:
    return {stem(t) for t in content_terms(text) if not t.replace(".", "").isdigit()}


_BULLETS = re.compile(r"^[\s\-*+•○§□®◊}>#]+")


def evidence_lines(passages: Sequence[str]) -> list[str]:
    """Lines/sentences of the evidence, bullets and markup stripped."""
    lines = []
    for text in passages:
        for raw in (s for line in text.replace("**", "").replace("`", "").split("\n")
                    for s in sentences(line)):
            line = _BULLETS.sub("", raw).strip()
            if len(line) >= 3:
                lines.append(line)
    return lines


@dataclass
class Verdict:
    """One sentence's support check (``reasons`` name every failed hard rule)."""

    supported: bool
    score: float
    lexical: float = 0.0
    semantic: float = 0.0
    reasons: list[str] = field(default_factory=list)


@dataclass
class Verifier:
    """Scores sentences against evidence; ``embedder`` is optional (lexical-only without);
    the weights and the threshold are the ``verify`` settings."""

    embedder: object | None = None
    params: VerifySettings = field(default_factory=VerifySettings)

    def check(self, sentence: str, passages: Sequence[str]) -> Verdict:
        split = [_split_heading(p) for p in passages]
        text = _without_heading_lead(" ".join(sentence.split()), split)
        lines = evidence_lines([f"{h}\n{b}" if h else b for h, b in split])
        evidence = "\n".join(f"{h}\n{b}" for h, b in split)
        if not lines or not content_terms(text):
            return Verdict(False, 0.0, reasons=["no evidence"] if not lines else ["empty"])
        reasons: list[str] = []
        missing_numbers = numbers(text) - numbers(evidence)
        if missing_numbers:
            reasons.append("number not in evidence: " + ", ".join(
                f"{n:g}" for n in sorted(missing_numbers)))
        # A name the sentence states (acronym, CamelCase, capitalised word) must be written in
        # a passage body, or in its heading when that body names nothing else (a heading
        # "FSx for Windows" over a line about EFS must not vouch for "FSx only supports Linux").
        missing_services = names(text)
        for head, body in split:
            missing_services = {n for n in missing_services if not mentions(body, n)}
            if not {n for n in names(body) if not mentions(text, n)}:
                missing_services = {n for n in missing_services if not mentions(head, n)}
        if missing_services:
            reasons.append("name not in evidence: " + ", ".join(sorted(missing_services)))
        # "3,000 IOPS per GB" from "3,000 IOPS per volume ... 3 IOPS/GB": each number's own base.
        evidence_rates = rates(evidence)
        wrong_rates = {(n, base) for n, base in rates(text) - evidence_rates
                       if any(n == m for m, _ in evidence_rates)}
        if wrong_rates:
            missing_numbers |= {n for n, _ in wrong_rates}
            reasons.append("number has another base in the evidence: " + ", ".join(
                f"{n:g} per {base}" for n, base in sorted(wrong_rates)))

        keys = _keys(text)
        evidence_keys = _keys(evidence)
        lexical = len(keys & evidence_keys) / len(keys) if keys else 0.0
        line_keys = [_keys(line) for line in lines]
        clauses = sentence_clauses(text)
        sims_of: list[np.ndarray] = []  # per sentence clause: cosine to every evidence line
        if self.embedder is not None:
            vectors = np.asarray(self.embedder.encode([text, *lines, *clauses]))
            line_vectors = vectors[1:len(lines) + 1]
            semantic = float(np.max(line_vectors @ vectors[0]))
            sims_of = [line_vectors @ v for v in vectors[len(lines) + 1:]]
        else:
            semantic = lexical
        score = self.params.lexical_weight * lexical + self.params.semantic_weight * semantic
        flipped = self._polarity_flip(clauses, lines, line_keys, sims_of)
        if flipped:
            score -= self.params.negation_penalty
            reasons.append(f"polarity differs from: {flipped[:80]}")
        unbacked = unbacked_parts(clauses, evidence_keys)
        if unbacked:
            reasons.append("clause not in evidence: " + unbacked[0][:80])
        broken_rule = bool(missing_numbers or missing_services or unbacked)
        score = 0.0 if broken_rule else max(0.0, min(1.0, score))
        return Verdict(score >= self.params.support_threshold and not broken_rule,
                       round(score, 4), round(lexical, 4), round(semantic, 4), reasons)

    @staticmethod
    def _polarity_flip(clauses: list[str], lines: list[str], line_keys: list[set[str]],
                       sims_of: list[np.ndarray]) -> str:
        """The evidence line whose polarity a clause of the sentence contradicts, or "".

        Each clause of the sentence ("X; not Y", "A. B.") is aligned with the evidence line
        it restates (shared words plus similarity), then with that line's clause sharing most
        words; a negation count of different parity from both is a flip. Clause by clause, so a
        quoted "Not retained: kept 0 to 35 days" is not read as one negated claim; a clause that
        is word for word an evidence line (or one of its clauses) cannot flip anything.
        """
        whole = {_flat(c) for line in lines for c in [line, *sentence_clauses(line)]}
        for k, clause in enumerate(clauses):
            # Aligned by what the clause says, not by whom it names (the names rule checks
            # those; the passage's subject is on many of its lines).
            named = {stem(n) for n in names(clause)}
            ckeys = _keys(clause) - named or _keys(clause)
            if not ckeys or _flat(clause) in whole:
                continue

            def fit(i: int) -> float:
                sim = float(sims_of[k][i]) if sims_of else 0.0
                return len(ckeys & line_keys[i]) / len(ckeys) + sim

            aligned = max(range(len(lines)), key=fit)
            if not ckeys & line_keys[aligned]:
                continue
            parts = sentence_clauses(lines[aligned]) or [lines[aligned]]
            part = max(parts, key=lambda c: len(ckeys & _keys(c)))
            parity = negations(clause) % 2
            if parity != negations(lines[aligned]) % 2 and parity != negations(part) % 2:
                return lines[aligned]
        return ""


def make_verifier(settings, embedder) -> Verifier:
    return Verifier(embedder=embedder, params=settings.verify)


def with_heading(heading: str, text: str) -> str:
    """Evidence text as the verifier sees a passage: its heading path, then its text."""
    return f"{HEADING_MARK}{heading}\n{text}" if heading else text


HEADING_MARK = "#> "


def _without_heading_lead(text: str, split: Sequence[tuple[str, str]]) -> str:
    """``text`` without a leading "Heading: " that is a heading of a cited passage."""
    lead, sep, rest = text.partition(": ")
    if not sep or not content_terms(rest):
        return text
    inner = [strip_markup(m.group(2)) for head, body in split for line in body.split("\n")
             if (m := HEADING.match(line.strip()))]
    headings = {part.lower() for part in inner} | {
        part.lower() for head, _ in split for part in head.split(" > ")}
    return rest if lead.strip().lower() in headings else text


def _split_heading(passage: str) -> tuple[str, str]:
    if passage.startswith(HEADING_MARK):
        head, _, body = passage.partition("\n")
        return head[len(HEADING_MARK):], body
    return "", passage
