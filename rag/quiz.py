"""Practice questions from the notes: harvested, cloze and which-service items (or generated
ones when a generator is available), each validated against its cited passage before use.

The notes already contain exam prompts with solutions (``exam-scenarios.md``), a Q&A section
whose bullets say which answer is right and why the others are wrong, and "chosen vs. correct
solution" write-ups. Those are harvested as they are; fact bullets become cloze or
which-service questions whose distractors are sibling services that also occur in the notes.
Validation (``validate``) reuses the polarity-aware evidence scoring of ``rag.evidence``: the
answer must be supported by the passage, no distractor may be, options must be distinct and
the question must not near-duplicate an earlier one.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError, field_validator

from rag.errors import InputError, StudyragError
from rag.evidence import NEGATIVE, VectorCache, clauses_of, stems
from rag.extractive import _finish, content_terms, split_units, strip_markup
from rag.models import Chunk, Passage
from rag.retrieval import Hit

log = logging.getLogger(__name__)
Source = Literal["harvested", "cloze", "which-service", "generated"]
BLANK = "_____"
SUPPORT_MIN = 0.72
DISTRACTOR_MAX = 0.72
DUPLICATE_COS = 0.9
GENERIC_HEADINGS = re.compile(
    r"^(understanding|analyzing|why|key points|conclusion|correct solution|comparison|"
    r"example|importance|factors|alternatives|choosing|migrating|easy-to|cross-region|"
    r"database connection|aws lambda function structure|mysqldump|aurora mysql and|"
    r"multi-az failover|amazon aurora global|cloudfront for direct|alb for routing|"
    r"questions|resources|concepting|metadata|q&a)", re.IGNORECASE)

# Sibling services by family: distractors come from the correct answer's family, and only
# names that occur in the student's notes are used.
SERVICE_FAMILIES: dict[str, list[str]] = {
    "storage": ["S3", "EBS", "EFS", "FSx", "Glacier", "Instance Store", "Storage Gateway",
                "Snowball", "DataSync"],
    "compute": ["EC2", "Lambda", "Fargate", "ECS", "EKS", "Elastic Beanstalk", "Batch",
                "Lightsail"],
    "database": ["RDS", "Aurora", "DynamoDB", "Redshift", "ElastiCache", "DAX", "Neptune",
                 "DocumentDB", "Athena", "Glue"],
    "messaging": ["SQS", "SNS", "Kinesis", "Amazon MQ", "EventBridge", "Step Functions",
                  "CloudWatch Events"],
    "networking": ["CloudFront", "Route 53", "Global Accelerator", "Direct Connect",
                   "Transit Gateway", "NAT Gateway", "Internet Gateway", "VPC Endpoint",
                   "VPC Peering", "Site-to-Site VPN", "Network Load Balancer",
                   "Application Load Balancer", "Classic Load Balancer", "Gateway Load Balancer"],
    "security": ["IAM", "KMS", "CloudHSM", "Secrets Manager", "Parameter Store", "WAF",
                 "Shield", "Firewall Manager", "GuardDuty", "Inspector", "Cognito", "STS",
                 "ACM", "Security Hub", "Macie", "Organizations", "SCP"],
    "operations": ["CloudWatch", "CloudTrail", "Config", "Systems Manager", "CloudFormation",
                   "Trusted Advisor", "OpsWorks", "X-Ray", "CodeDeploy", "CodeBuild"],
}


def _service_pattern(name: str) -> re.Pattern:
    return re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])", re.IGNORECASE)


_SERVICES = {name: _service_pattern(name) for fam in SERVICE_FAMILIES.values() for name in fam}
_FAMILY = {name: fam for fam, names in SERVICE_FAMILIES.items() for name in names}


class Question(BaseModel):
    """One multiple-choice question; ``passage`` is the note passage it tests (cited)."""

    id: str
    topic: str
    stem: str
    options: list[str] = Field(min_length=4, max_length=4)
    answer_index: int = Field(ge=0, le=3)
    explanation: str
    passage: Passage
    source: Source

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
    """No questions can be made (unknown topic, or the notes have too little on it)."""


# --- topics --------------------------------------------------------------------------------
def _topic_of(chunk: Chunk) -> str:
    """The first non-generic heading of the chunk's path (the section it belongs to)."""
    for part in (chunk.heading or "").split(" > "):
        part = part.strip()
        if part and not GENERIC_HEADINGS.match(part) and not part.lower().startswith(
                "aws certified"):
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


def topic_chunks(index, topic: str | None) -> list[Chunk]:
    """Chunks whose heading path mentions the topic (a word match, case-insensitive)."""
    chunks = sorted(index.chunks().values(), key=lambda c: (c.file, c.start_line))
    if not topic:
        return chunks
    pattern = re.compile(rf"(?<![\w-]){re.escape(topic.strip())}(?![\w-])", re.IGNORECASE)
    return [c for c in chunks if pattern.search(c.heading or "") or pattern.search(c.title)]


def _hit(chunk: Chunk) -> Hit:
    return Hit(id=chunk.id, chunk=chunk, fused=0.0, dense=0.0, bm25=0.0)


def _qid(source: str, *parts: str) -> str:
    return source[:2] + "-" + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:10]


def _passage(chunk: Chunk) -> Passage:
    return Passage.from_chunk(chunk)


def services_in(text: str) -> list[str]:
    """Known service names mentioned in the text, longest names first, no overlaps."""
    found: list[tuple[int, str]] = []
    taken: list[tuple[int, int]] = []
    for name in sorted(_SERVICES, key=len, reverse=True):
        for m in _SERVICES[name].finditer(text):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            taken.append((m.start(), m.end()))
            found.append((m.start(), name))
    return [name for _, name in sorted(found)]


def _pick(pool: Iterable[str], exclude: set[str], n: int, rng: random.Random) -> list[str]:
    items = [p for p in dict.fromkeys(pool) if p.lower() not in exclude]
    rng.shuffle(items)
    return items[:n]


def _shuffle(correct: str, distractors: list[str], rng: random.Random) -> tuple[list[str], int]:
    options = [correct] + distractors[:3]
    rng.shuffle(options)
    return options, options.index(correct)


# --- harvesting the notes' own questions ---------------------------------------------------
_QA_ANSWER = re.compile(
    r"(?:the correct answer is|here,? the best fit is|the only possible answer is|"
    r"our only option to [\w ]+? is to use|the natural and by far easiest solution would be "
    r"to use)\s+(?P<a>[^.,;]+)|(?P<b>[A-Z][\w ]{1,40}?) is the correct answer|"
    r"here,? using (?P<c>[\w ]{2,40}?) (?:as|feature|is|will)", re.IGNORECASE)


@dataclass
class NotesQuestionBank:
    """Questions the notes already contain, plus cloze/which-service items from fact bullets."""

    index: object
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    _known: set[str] = field(default_factory=set)

    def known_services(self) -> list[str]:
        if not self._known:
            text = " ".join(c.text for c in self.index.chunks().values())
            self._known = {name for name, pat in _SERVICES.items() if pat.search(text)}
        return sorted(self._known)

    def siblings(self, service: str, exclude: set[str]) -> list[str]:
        family = SERVICE_FAMILIES.get(_FAMILY.get(service, ""), [])
        near = [s for s in family if s in self.known_services()]
        picked = _pick(near, exclude | {service.lower()}, 3, self.rng)
        if len(picked) < 3:  # a small family: fill from the rest of the notes' services
            picked += _pick(self.known_services(), exclude | {service.lower()} |
                            {p.lower() for p in picked}, 3 - len(picked), self.rng)
        return picked

    # Q&A bullets: "... The correct answer is EC2" with the others named and ruled out.
    def qa_questions(self) -> list[Question]:
        out = []
        for chunk in self.index.chunks().values():
            if "Q&A" not in (chunk.heading or ""):
                continue
            for unit in split_units(_hit(chunk), 0, max_chars=10_000):
                m = _QA_ANSWER.search(unit.text)
                if not m:
                    continue
                phrase = (m.group("a") or m.group("b") or m.group("c")).strip()
                named = services_in(phrase)
                if not named:
                    continue
                answer = named[0]
                before = unit.text[: m.start()]
                if _SERVICES[answer].search(before):
                    continue  # named before the verdict: the stem would give it away
                mentioned = [s for s in services_in(before) if s != answer]
                distractors = list(dict.fromkeys(mentioned))[:3]
                if len(distractors) < 3:
                    distractors += self.siblings(answer, {d.lower() for d in distractors})
                verdict_sentence = _SERVICES[answer].sub(BLANK, unit.text[m.start():], count=1)
                verdict_sentence = re.split(r"(?<=[.!?])\s+", verdict_sentence)[0]
                stem = (f"Your notes' Q&A says: \"{before.strip()} {verdict_sentence}\" "
                        "Which option fills the blank?")
                options, idx = _shuffle(answer, distractors, self.rng)
                out.append(Question(
                    id=_qid("harvested", unit.text), topic=_topic_of(chunk) or "Q&A",
                    stem=stem, options=options, answer_index=idx,
                    explanation=_finish(unit.text), passage=_passage(chunk),
                    source="harvested"))
        return out

    # exam-scenarios.md: "> prompt: ..." with "_solution: ..." (or a scenario + its answer).
    def scenario_questions(self) -> list[Question]:
        sections: dict[str, list[Chunk]] = {}
        for chunk in self.index.chunks().values():
            if chunk.file.endswith("exam-scenarios.md"):
                sections.setdefault(chunk.heading.split(" > ")[0], []).append(chunk)
        items = []
        for heading, chunks in sections.items():
            chunks.sort(key=lambda c: c.start_line)
            prompt = solution = None
            for chunk in chunks:
                for line in chunk.text.split("\n"):
                    body = strip_markup(line.strip().lstrip(">").strip())
                    if line.lstrip().startswith(">") and len(body) > 60 and prompt is None:
                        prompt = (re.sub(r"^prompt\s*:\s*", "", body, flags=re.I), chunk)
                    elif re.match(r"^solution\s*:", body, re.I) and solution is None:
                        solution = (body.split(":", 1)[1].strip(), chunk)
            if prompt and solution:
                items.append((heading, prompt[0], solution[0], solution[1]))
        out = []
        for heading, prompt, solution, chunk in items:
            others = [s for h, _, s, _ in items if h != heading]
            first = re.split(r"(?<=\.)\s+", solution)[0]
            distractors = [re.split(r"(?<=\.)\s+", o)[0] for o in others][:3]
            distractors += self._ruled_out(chunks_for(self.index, chunk.file, heading))
            distractors = list(dict.fromkeys(distractors))[:3]
            if len(distractors) < 3:
                continue
            options, idx = _shuffle(first, distractors, self.rng)
            out.append(Question(
                id=_qid("harvested", prompt), topic=heading, stem=prompt, options=options,
                answer_index=idx, explanation=f"Your notes' solution: {solution}",
                passage=_passage(chunk), source="harvested"))
        return out

    def _ruled_out(self, chunks: list[Chunk]) -> list[str]:
        """Approaches the section explicitly rejects ("Although you can use X ...")."""
        out = []
        for chunk in chunks:
            for line in chunk.text.split("\n"):
                m = re.search(r"(?:although you can use|not recommended to) ([^,.]+)",
                              strip_markup(line), re.IGNORECASE)
                if m:
                    out.append(_finish(m.group(1)[0].upper() + m.group(1)[1:]))
        return out

    def harvested(self) -> list[Question]:
        return self.qa_questions() + self.scenario_questions()

    # Fact bullets: blank out a service (which-service when it is the subject, else cloze).
    def fact_questions(self, chunks: list[Chunk], limit: int = 200) -> list[Question]:
        out = []
        for chunk in chunks:
            for unit in split_units(_hit(chunk), 0):
                text = unit.text
                named = services_in(text)
                if not named or len(content_terms(text)) < 5 or len(text) > 260:
                    continue
                if NEGATIVE.search(text) or "?" in text:
                    continue  # a negated fact makes an ambiguous question
                answer = named[0]
                if len(set(named)) > 2 or named.count(answer) > 1:
                    continue  # the answer would show elsewhere in the stem
                blanked = _SERVICES[answer].sub(BLANK, text, count=1)
                if BLANK not in blanked:
                    continue
                tail = blanked.split(": ", 1)[-1]
                if len(re.findall(r"[A-Za-z]{2,}", tail)) < 6 or re.search(
                        rf"{BLANK}\s*,|,\s*{BLANK}", blanked):
                    continue  # a fragment or a list item: too little context to decide
                subject = blanked.lstrip().startswith(BLANK)
                distractors = self.siblings(answer, {n.lower() for n in named})
                if len(distractors) < 3:
                    continue
                stem = (f"Which service fits? {blanked}" if subject else
                        f"Fill in the blank: {blanked}")
                options, idx = _shuffle(answer, distractors, self.rng)
                out.append(Question(
                    id=_qid("cloze", text), topic=_topic_of(chunk) or answer, stem=stem,
                    options=options, answer_index=idx,
                    explanation=f"Your notes: {_finish(text)}", passage=_passage(chunk),
                    source="which-service" if subject else "cloze"))
                if len(out) >= limit:
                    return out
        return out


def chunks_for(index, file: str, heading: str) -> list[Chunk]:
    return [c for c in index.chunks().values()
            if c.file == file and c.heading.split(" > ")[0] == heading]


# --- validation ----------------------------------------------------------------------------
def _claim(stem: str, option: str) -> str:
    if BLANK in stem:
        body = stem.split('"', 1)[1].rsplit('"', 1)[0] if stem.count('"') >= 2 else stem
        body = re.sub(r"^(Which service fits\?|Fill in the blank:)\s*", "", body)
        sentence = next((x for x in re.split(r"(?<=[.!?])\s+", body) if BLANK in x), body)
        return sentence.replace(BLANK, option, 1)
    return option  # a scenario question: the option itself must be stated in the passage


def _norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


class Validator:
    """Checks a question against its passage; remembers accepted ones to catch duplicates."""

    def __init__(self, embedder):
        self.vectors = VectorCache(embedder)
        self.accepted: list[np.ndarray] = []

    def support(self, question: Question) -> list[float]:
        """Per option: how well the passage states "stem + option" as a fact (0..1)."""
        clauses = [c for c in clauses_of([_hit(Chunk(
            file=question.passage.file, heading=question.passage.heading,
            start_line=question.passage.start_line, end_line=question.passage.end_line,
            text=question.passage.text))]) if c.polarity >= 0 or c.pos_terms]
        if not clauses:
            return [0.0] * len(question.options)
        cvecs = self.vectors.encode([c.text for c in clauses])
        claims = [_claim(question.stem, o) for o in question.options]
        qvecs = self.vectors.encode(claims)
        scores = []
        for option, claim, qvec in zip(question.options, claims, qvecs):
            own = stems(option) or {_norm(option)}
            claim_terms = stems(claim)
            best = 0.0
            for clause, cvec in zip(clauses, cvecs):
                if not own <= clause.pos_terms:
                    continue  # the option must be stated positively in this clause
                cover = len(claim_terms & clause.pos_terms) / max(len(claim_terms), 1)
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
        answer_norm = _norm(question.answer)
        if BLANK in question.stem and re.search(rf"\b{re.escape(answer_norm)}\b",
                                                _norm(question.stem)):
            problems.append("the stem gives the answer away")
        scores = self.support(question)
        right = scores[question.answer_index]
        if right < SUPPORT_MIN:
            problems.append(f"answer not supported by the cited passage ({right:.2f})")
        for i, score in enumerate(scores):
            if i != question.answer_index and score >= min(DISTRACTOR_MAX, right - 0.05):
                problems.append(f"distractor {question.options[i]!r} is also supported "
                                f"({score:.2f})")
        vec = self.vectors.encode([f"{question.stem} {question.answer}"])[0]
        if any(float(vec @ other) >= DUPLICATE_COS for other in self.accepted):
            problems.append("near-duplicate of an earlier question")
        if not problems and remember:
            self.accepted.append(vec)
        return problems


def validate(question: Question, validator: Validator, remember: bool = False) -> list[str]:
    """Module-level entry: the problems of one question (see ``Validator.validate``)."""
    return validator.validate(question, remember=remember)


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
    """Makes N validated questions on a topic (or weighted to weak topics) from the notes."""

    def __init__(self, tutor, progress=None, seed: int | None = None):
        self.tutor = tutor
        self.index = tutor.search.index
        self.progress = progress
        self.rng = random.Random(seed)
        self.bank = NotesQuestionBank(self.index, rng=self.rng)
        self.validator = Validator(self.index.embedder)
        self.stats = QuizStats()
        self._harvested: list[Question] | None = None

    @property
    def generator(self):
        return getattr(self.tutor, "generator", None)

    def candidates(self, topic: str | None) -> list[Question]:
        """Harvested questions first (the notes' own), then fact questions, topic-filtered."""
        if self._harvested is None:
            self._harvested = self.bank.harvested()
        chunks = topic_chunks(self.index, topic)
        if topic and not chunks:
            names = ", ".join(t.name for t in list_topics(self.index)[:12])
            raise QuizError(f"No notes under a heading matching {topic!r}; try one of: {names}"
                            " (see `study topics`).")
        keys = {(c.file, c.start_line) for c in chunks}
        harvested = [q for q in self._harvested
                     if not topic or (q.passage.file, q.passage.start_line) in keys
                     or topic.lower() in q.topic.lower()]
        facts = self.bank.fact_questions(self._weighted(chunks, topic))
        self.rng.shuffle(harvested)
        self.rng.shuffle(facts)
        return harvested + facts

    def _weighted(self, chunks: list[Chunk], topic: str | None) -> list[Chunk]:
        """Across the notes, chunks of the student's weak topics come first."""
        if topic or not self.progress:
            chunks = list(chunks)
            self.rng.shuffle(chunks)
            return chunks
        weak = {t.lower() for t in self.progress.weak_topics()}
        chunks = list(chunks)
        self.rng.shuffle(chunks)
        return sorted(chunks, key=lambda c: _topic_of(c).lower() not in weak)

    def generate(self, chunk: Chunk, topic: str, attempts: int = 3) -> Question | None:
        """One question from a generator with structured output, retried when invalid."""
        model = self.generator
        if model is None:
            return None
        prompt = (
            "Write one multiple-choice exam question that tests this note passage. Exactly one "
            "option must be correct according to the passage; the other three must be wrong "
            f"according to it.\n\nPassage ({chunk.heading}):\n{chunk.text}")
        try:
            structured = model.with_structured_output(GeneratedQuestion)
        except Exception:  # not every chat model supports it: fall back to the notes
            return None
        for _ in range(attempts):
            try:
                got = structured.invoke(prompt)
                got = got if isinstance(got, GeneratedQuestion) else \
                    GeneratedQuestion.model_validate(got)
                return Question(id=_qid("generated", got.stem), topic=topic, stem=got.stem,
                                options=got.options, answer_index=got.answer_index,
                                explanation=got.explanation, passage=_passage(chunk),
                                source="generated")
            except (ValidationError, ValueError, TypeError) as exc:
                log.info("Generated question rejected: %s", exc)
            except Exception as exc:  # generator down: use the notes
                log.warning("Generator failed (%s); using questions from the notes.", exc)
                return None
        return None

    def make(self, topic: str | None = None, n: int = 5) -> list[Question]:
        """N valid questions; every candidate is validated, failures dropped and counted."""
        if n < 1:
            raise InputError("Ask for at least one question (--n 1).")
        out: list[Question] = []
        pool = self.candidates(topic)
        if self.generator is not None:
            for chunk in topic_chunks(self.index, topic)[: 2 * n]:
                q = self.generate(chunk, topic or _topic_of(chunk))
                if q:
                    pool.insert(0, q)
        for q in pool:
            if len(out) == n:
                break
            self.stats.candidates += 1
            problems = self.validator.validate(q)
            if problems:
                for p in problems:
                    key = p.split(" (")[0].split("'")[0].strip()
                    self.stats.rejected[key] = self.stats.rejected.get(key, 0) + 1
                continue
            self.stats.valid += 1
            out.append(q)
        if not out:
            raise QuizError(f"Your notes have too little on {topic!r} to make a question.")
        return out


def grade(question: Question, chosen: int) -> tuple[bool, str]:
    """Right or wrong, with the explanation and the cited passage."""
    ok = chosen == question.answer_index
    head = "Correct!" if ok else f"Not quite: the answer is {question.letter}) {question.answer}."
    return ok, f"{head} {question.explanation} [1] {question.passage.location}"
