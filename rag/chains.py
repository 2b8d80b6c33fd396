"""The answer chain (LCEL): condense → retrieve → abstain or answer → cite.

``Tutor`` is what the CLI, the app, explain and the eval harness call. The extractive answerer
is built in; generators plug into the same chain (see ``rag.generation``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from langchain_core.runnables import RunnableLambda

from rag.config import Settings
from rag.extractive import select_sentences
from rag.text import content_terms
from rag.models import Answer, Citation, Passage, Sentence
from rag.retrieval import Hit, HybridSearch, clean_question

NOT_COVERED = "Your notes don't cover this."
_CITE = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


@dataclass
class Turn:
    question: str
    answer: str


@dataclass
class ChainState:
    """What flows between the chain's steps."""

    question: str
    history: list[Turn] = field(default_factory=list)
    standalone: str = ""
    hits: list[Hit] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)


def nearest_topics(hits: list[Hit], n: int = 3) -> list[str]:
    topics: list[str] = []
    for h in hits:
        label = f"{h.chunk.heading or h.chunk.title} ({h.chunk.file})"
        if label not in topics:
            topics.append(label)
    return topics[:n]


def renumber(sentences: list[Sentence], passages: list[Passage]
             ) -> tuple[list[Sentence], list[Citation]]:
    """Keep only citations that exist, number them 1..m in order of first use."""
    mapping: dict[int, int] = {}
    out: list[Sentence] = []
    for s in sentences:
        valid = [n for n in s.citations if 1 <= n <= len(passages)]
        for n in valid:
            mapping.setdefault(n, len(mapping) + 1)
        out.append(s.model_copy(update={"citations": sorted({mapping[n] for n in valid})}))
    citations = [Citation(n=new, passage=passages[old - 1]) for old, new in mapping.items()]
    return out, citations


def render(sentences: list[Sentence], mark_unsupported: bool = False) -> str:
    parts = []
    for s in sentences:
        cites = "".join(f"[{n}]" for n in s.citations)
        text = s.text if s.supported or not mark_unsupported else f"(unsupported) {s.text}"
        parts.append(f"{text} {cites}".strip())
    return " ".join(parts)


def parse_citations(text: str) -> list[int]:
    return [int(n) for group in _CITE.findall(text) for n in group.split(",")]


def strip_citations(text: str) -> str:
    return " ".join(_CITE.sub("", text).split())


class Tutor:
    """Answers questions from the notes with citations; one instance per process."""

    def __init__(self, settings: Settings, search: HybridSearch | None = None):
        self.settings = settings
        self.search = search or HybridSearch(settings)
        self.chain = (
            RunnableLambda(self._condense, name="condense")
            | RunnableLambda(self._retrieve, name="retrieve")
            | RunnableLambda(self._answer, name="answer")
        )

    # --- chain steps -------------------------------------------------------------------
    def _condense(self, state: ChainState) -> ChainState:
        state.standalone = condense_question(state.question, state.history)
        return state

    def _retrieve(self, state: ChainState) -> ChainState:
        state.hits = self.search.hits(state.standalone)
        return state

    def _answer(self, state: ChainState) -> Answer:
        return self.extractive_answer(state)

    # --- answering ---------------------------------------------------------------------
    def should_abstain(self, hits: list[Hit], best: float, coverage: float) -> bool:
        """Weak evidence: low semantic match and few of the question's terms in the notes."""
        if not hits:
            return True
        return best < self.settings.abstain_threshold

    def abstention(self, state: ChainState, backend: str = "extractive") -> Answer:
        return Answer(
            question=state.question, answer=NOT_COVERED, abstained=True,
            nearest_topics=nearest_topics(state.hits), backend=backend,
            standalone_question=state.standalone,
            latency_ms=(time.perf_counter() - state.started) * 1000,
        )

    def extractive_answer(self, state: ChainState, fell_back: bool = False) -> Answer:
        embedder = self.search.index.embedder
        qvec = embedder.encode([state.standalone])[0]
        extract = select_sentences(
            state.standalone, qvec, state.hits, embedder,
            max_sentences=self.settings.extractive_max_sentences,
        )
        if not extract.sentences or self.should_abstain(state.hits, extract.best,
                                                        extract.coverage):
            return self.abstention(state)
        passages = [h.passage() for h in state.hits]
        raw = [Sentence(text=text, citations=[i + 1], supported=True, score=1.0)
               for text, i, _ in extract.sentences]
        sentences, citations = renumber(raw, passages)
        return Answer(
            question=state.question, answer=render(sentences), citations=citations,
            sentences=sentences, backend="extractive", fell_back=fell_back,
            standalone_question=state.standalone,
            latency_ms=(time.perf_counter() - state.started) * 1000,
        )

    def ask(self, question: str, history: list[Turn] | None = None) -> Answer:
        question = clean_question(question)
        return self.chain.invoke(ChainState(question=question, history=list(history or [])))

    def stream(self, question: str, history: list[Turn] | None = None
               ) -> Iterator[str | Answer]:
        """Yield text pieces as they are ready, then the final ``Answer``."""
        answer = self.ask(question, history)
        for i, piece in enumerate(answer.answer.split(" ")):
            yield piece if i == 0 else " " + piece
        yield answer


_FOLLOW_UP = re.compile(
    r"^(and|what about|how about|also|but|so|then|why|is it|are they|does it|do they|can it)\b"
    r"|\b(it|its|they|them|their|this|that|these|those|one)\b",
    re.IGNORECASE,
)


def condense_question(question: str, history: list[Turn]) -> str:
    """Make a follow-up standalone without a model: carry the previous topic terms along."""
    if not history:
        return question
    own_terms = content_terms(question)
    if len(own_terms) >= 4 and not _FOLLOW_UP.search(question):
        return question
    previous = history[-1].question
    carried = [t for t in content_terms(previous) if t not in own_terms][:6]
    return f"{question} ({' '.join(carried)})" if carried else question
