"""The answer path: condense → retrieve → abstain or answer → verify → cite.

``Tutor`` is what the CLI, the app, explain and the eval harness call. Backends:

* ``extractive`` — the best note sentences, quoted, each with [n] (no model).
* ``embedded`` — SmolLM2-135M writes one direct answer sentence from the best note sentences
  (``rag.prompts.lead_messages``); the quoted note sentences follow it, and the chain cites it.
* ``ollama`` / ``openai`` — the numbered-passages prompt; [n] citations parsed from the text.

Every generated sentence is checked against the passages it cites (``rag.verify``);
unsupported ones are dropped or marked (``settings.answer.unsupported``) and, when fewer than
half survive (or the embedded lead fails), the extractive answer is returned with
``fell_back=True``. A generator that is missing or fails also falls back. ``backend="auto"``
picks the measured default (``settings.answer.auto_prefers_embedded``).

The steps are plain methods, not LCEL runnables: the answer streams text and ends with a
typed ``Answer``, which no runnable composition carries better than a generator does.
LangChain does the parts it is for: the retriever, the chat models and the condense prompt.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser

from rag import prompts
from rag.config import Settings
from rag.errors import GenerationError
from rag.abstain import abstains as weak_evidence
from rag.citations import (markers, parse_sentences, render, renumber, renumber_shown,
                           strip_citations, valid_citations)
from rag.extractive import Candidates, Extract, candidates, compose
from rag.generation.registry import writes
from rag.models import Answer, Hit, Passage, Sentence
from rag.prompts import NOT_COVERED
from rag.retrieval import HybridSearch, clean_question
from rag.text import content_terms

log = logging.getLogger(__name__)

_DECLINE = re.compile(r"notes (do not|don't|dont) cover", re.IGNORECASE)

# Measured on evals/datasets/dev.jsonl (evals/reports/2026-11-25-dev.md and -embedded-leads.md):


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
    found: Candidates | None = None
    qvec: np.ndarray | None = None  # the standalone question's vector, embedded once
    started: float = field(default_factory=time.perf_counter)


def nearest_topics(hits: list[Hit], n: int = 3) -> list[str]:
    topics: list[str] = []
    for h in hits:
        label = f"{h.chunk.heading or h.chunk.title} ({h.chunk.file})"
        if label not in topics:
            topics.append(label)
    return topics[:n]


def resolve_answer_backend(settings: Settings) -> str:
    """The backend that answers: the configured one, or what ``auto`` means right now.

    ``auto`` uses a configured Ollama/OpenAI server when it is reachable; otherwise the
    embedded model only if ``answer.auto_prefers_embedded`` (it lost to extractive on the dev
    set).
    """
    name = settings.answer.backend
    if name != "auto":
        return name
    try:
        from rag.generation import resolve_backend

        chosen = resolve_backend(settings)
    except Exception as exc:  # a probe must never stop an answer
        log.warning("backend probe failed: %s", exc)
        return "extractive"
    if chosen == "embedded" and not settings.answer.auto_prefers_embedded:
        return "extractive"
    return chosen


@dataclass
class _Draft:
    """A generated answer before it becomes an Answer."""

    sentences: list[Sentence]  # every sentence, verdicts set (shown and rejected)
    model: str = ""
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    generated: int | None = None  # how many leading sentences the model wrote (None: all)


class Tutor:
    """Answers questions from the notes with citations; one instance per process."""

    def __init__(self, settings: Settings, search: HybridSearch | None = None,
                 model: BaseChatModel | None = None):
        """``model`` replaces the configured backend's generator (tests pass a fake one)."""
        self.settings = settings
        self.search = search or HybridSearch(settings)
        self._model = model
        self._backend: str | None = None
        self._verifier = None

    # --- configuration -----------------------------------------------------------------
    @property
    def backend(self) -> str:
        """The answering backend (``auto`` resolved once, on first use)."""
        if self._backend is None:
            self._backend = resolve_answer_backend(self.settings)
        return self._backend

    @property
    def verifier(self):
        if self._verifier is None:
            from rag.verify import make_verifier

            self._verifier = make_verifier(self.settings, self.search.index.embedder)
        return self._verifier

    def chat_model(self):
        """The generator (loaded lazily, cached per process by rag.generation)."""
        if self._model is not None:
            return self._model
        from rag.generation import get_chat_model

        return get_chat_model(self.settings, self.backend)

    # --- steps -------------------------------------------------------------------------
    def prepare(self, question: str, history: list[Turn] | None = None) -> ChainState:
        """The question made standalone, embedded once, and its hits."""
        state = ChainState(question=clean_question(question), history=list(history or []))
        state.standalone = self.condense(state.question, state.history)
        state.qvec = self.search.index.embedder.encode([clean_question(state.standalone)])[0]
        state.hits = self.search.hits(state.standalone, qvec=state.qvec)
        return state

    def condense(self, question: str, history: list[Turn]) -> str:
        """Standalone form of a follow-up: the generator when it is a real model server
        (history-aware LCEL prompt), else the heuristic :func:`condense_question`."""
        if not history:
            return question
        if self.settings.answer.condense_with_model and writes(self.backend):
            try:
                texts = self.settings.prompts
                template = prompts.chat_template(texts.condense_system, texts.condense_user)
                chain = template | self.chat_model() | StrOutputParser()
                text = chain.invoke({"history": prompts.format_history(history),
                                     "question": question})
                line = " ".join(text.strip().splitlines()[0].split()) if text.strip() else ""
                if 3 <= len(line) <= 400 and content_terms(line):
                    return line
            except GenerationError as exc:
                log.warning("condensing with the generator failed: %s", exc)
        return condense_question(question, history)

    # --- answering ---------------------------------------------------------------------
    def abstention(self, state: ChainState, backend: str = "extractive") -> Answer:
        return Answer(
            question=state.question, answer=NOT_COVERED, abstained=True,
            nearest_topics=nearest_topics(state.hits), backend=backend,
            standalone_question=state.standalone,
            latency_ms=(time.perf_counter() - state.started) * 1000,
        )

    def extract(self, state: ChainState) -> Extract:
        index = self.search.index
        if state.qvec is None:
            state.qvec = index.embedder.encode([state.standalone])[0]
        params = self.settings.answer.extractive
        state.found = candidates(state.standalone, state.qvec, state.hits, index.embedder,
                                 index.term_df(), len(index.chunks()), params, index.lines.vectors)
        return compose(state.found, params)

    def abstains(self, state: ChainState, extract: Extract) -> bool:
        """No lines, or evidence too weak (``rag.abstain``, calibrated on tune halves)."""
        return (not extract.sentences or state.found is None
                or weak_evidence(state.found, self.settings.retrieval.abstain))

    def extractive_answer(self, state: ChainState, fell_back: bool = False,
                          extract: Extract | None = None) -> Answer:
        extract = extract if extract is not None else self.extract(state)
        if self.abstains(state, extract):
            return self.abstention(state)
        passages = [h.passage() for h in state.hits]
        sentences, citations = renumber(self.extractive_sentences(extract), passages)
        return Answer(
            question=state.question, answer=render(sentences), citations=citations,
            sentences=sentences, backend="extractive", fell_back=fell_back,
            standalone_question=state.standalone,
            latency_ms=(time.perf_counter() - state.started) * 1000,
        )

    @staticmethod
    def extractive_sentences(extract: Extract) -> list[Sentence]:
        """The selected note sentences, quoted, each citing its hit (numbered 1..k)."""
        return [Sentence(text=text, citations=[i + 1], supported=True, score=1.0)
                for text, i, _ in extract.sentences]

    def respond(self, state: ChainState) -> Iterator[str | Answer]:
        """Yield text pieces as they are generated, then the final (verified) ``Answer``."""
        backend = self.backend
        extract = self.extract(state)
        quotes_only = backend == "extractive" or (backend == "embedded"
                                                   and not self.settings.answer.embedded_lead)
        if quotes_only or self.abstains(state, extract):
            # The small model never declines: abstention is decided on the evidence alone.
            answer = self.extractive_answer(state, extract=extract)
            if backend != "extractive" and answer.abstained:
                answer.backend = backend
            yield from _words(answer.answer)
            yield answer
            return
        try:
            model = self.chat_model()
            if backend == "embedded":
                draft = yield from self._lead(state, extract, model)
            else:
                draft = yield from self._generate(state, model)
        except GenerationError as exc:
            log.warning("generator failed, answering extractively: %s", exc)
            yield self._fallback(state, extract, reason=str(exc))
            return
        if draft is None:  # the model said the notes do not cover it
            yield self.abstention(state, backend)
            return
        yield self._finish(state, extract, draft, backend)

    def _fallback(self, state: ChainState, extract: Extract, reason: str = "",
                  draft: _Draft | None = None) -> Answer:
        answer = self.extractive_answer(state, fell_back=True, extract=extract)
        if draft is not None:
            answer.model = draft.model
            answer.ttft_ms = draft.ttft_ms
            answer.tokens_per_s = draft.tokens_per_s
        return answer

    def _finish(self, state: ChainState, extract: Extract, draft: _Draft,
                backend: str) -> Answer:
        """The verified answer. Too few supported generated sentences means the extractive
        answer (``fell_back``): the quoted notes the draft already carries after them (the
        embedded lead's), else a fresh extractive answer."""
        written = draft.sentences[:draft.generated]
        supported = sum(s.supported for s in written)
        fell_back = supported < 1 or supported < len(written) / 2
        if fell_back and len(written) == len(draft.sentences):
            return self._fallback(state, extract, "too few supported sentences", draft)
        mark = self.settings.answer.unsupported == "mark"
        shown = [s for s in draft.sentences if s.supported or mark]
        passages = [h.passage() for h in state.hits]
        shown_sentences, citations = renumber_shown(shown, draft.sentences, passages)
        return Answer(
            question=state.question,
            answer=render([s for s in shown_sentences if s.supported or mark],
                          mark_unsupported=mark),
            citations=citations, sentences=shown_sentences,
            backend="extractive" if fell_back else backend, fell_back=fell_back,
            model=draft.model, ttft_ms=draft.ttft_ms, tokens_per_s=draft.tokens_per_s,
            standalone_question=state.standalone,
            latency_ms=(time.perf_counter() - state.started) * 1000,
        )

    def _check(self, sentence: Sentence, passages: list[Passage]) -> Sentence:
        from rag.verify import with_heading

        valid = valid_citations(sentence.citations, passages)
        if not valid:
            return sentence.model_copy(update={"supported": False, "score": 0.0,
                                               "citations": []})
        cited = [passages[n - 1] for n in valid]
        verdict = self.verifier.check(sentence.text,
                                      [with_heading(p.heading, p.text) for p in cited])
        return sentence.model_copy(update={
            "supported": verdict.supported, "score": verdict.score, "citations": valid})

    def _lead(self, state: ChainState, extract: Extract, model) -> Iterator[str | Answer]:
        """Embedded path: one generated sentence that answers directly, then the quoted note
        sentences (the extractive answer), streamed as they come.

        The model sees only the best ``answer.lead_note_sentences`` note sentences. Its first
        sentence is kept only if it passes the support check against their passages and the
        lead gate (:func:`rag.verify.lead_problem`: nothing beyond those sentences, their
        headings and the question; an answer, not a repeat; facts from one sentence);
        otherwise it stays in ``sentences`` with ``supported: false`` and the answer is the
        quoted notes alone (``fell_back``).
        """
        from rag.generation import EMBEDDED_MODEL, stream_text
        from rag.verify import fit_answer_word, lead_problem

        passages = [h.passage() for h in state.hits]
        given = extract.sentences[:self.settings.answer.lead_note_sentences]
        cited = sorted({i + 1 for _, i, _ in given})
        note = " ".join(text for text, _, _ in given)
        stream = stream_text(model.bind(stop=prompts.LEAD_STOP),
                             prompts.lead_messages(note, state.standalone, self.settings.prompts))
        ttft = None
        for piece in stream:
            if ttft is None:
                ttft = (time.perf_counter() - state.started) * 1000
            yield piece
        quoted = self.extractive_sentences(extract)
        first = parse_sentences(strip_citations(stream.text))[:1]
        lead = []
        if first:
            text = fit_answer_word(first[0].text, state.standalone)
            checked = self._check(Sentence(text=text, citations=cited), passages)
            problem = lead_problem(text, state.standalone, [t for t, _, _ in given],
                                   [passages[n - 1].heading for n in cited])
            if problem and checked.supported:
                checked = checked.model_copy(update={"supported": False})
                log.info("lead sentence dropped (%s): %s", problem, text)
            lead = [checked]
        numbered, _ = renumber(lead + quoted, passages)
        if lead and lead[0].supported:
            yield " " + markers(numbered[0].citations)
        yield " " + render(numbered[len(lead):])
        return _Draft(lead + quoted, model=EMBEDDED_MODEL, ttft_ms=ttft,
                      tokens_per_s=stream.stats.tokens_per_s, generated=len(lead))

    def _generate(self, state: ChainState, model) -> Iterator[str | Answer]:
        """Ollama/OpenAI path: numbered passages in, cited sentences out (then verified)."""
        from rag.generation import stream_text

        passages = [h.passage() for h in state.hits]
        stream = stream_text(model, prompts.answer_messages(state.standalone, passages,
                                                           self.settings.prompts))
        ttft = None
        for piece in stream:
            if ttft is None:
                ttft = (time.perf_counter() - state.started) * 1000
            yield piece
        name = str(getattr(model, "model", "") or "")
        text = stream.text.strip()
        if _DECLINE.search(text) and len(strip_citations(text)) < 80:
            return None
        sentences = [self._check(s, passages) for s in parse_sentences(text)]
        return _Draft(sentences, model=name, ttft_ms=ttft,
                      tokens_per_s=stream.stats.tokens_per_s)

    # --- entry points --------------------------------------------------------------------
    def ask(self, question: str, history: list[Turn] | None = None) -> Answer:
        """The final answer of :meth:`stream`."""
        *_, answer = self.stream(question, history)
        return answer

    def stream(self, question: str, history: list[Turn] | None = None
               ) -> Iterator[str | Answer]:
        """Yield text pieces as they are generated, then the final ``Answer``.

        The final answer is the verified one and may differ from the streamed text
        (unsupported sentences dropped, or the extractive fallback): show the final one.
        """
        yield from self.respond(self.prepare(question, history))


def _words(text: str) -> Iterator[str]:
    for i, piece in enumerate(text.split(" ")):
        yield piece if i == 0 else " " + piece


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
