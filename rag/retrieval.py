"""Hybrid retrieval: dense (Chroma) + BM25, fused with reciprocal rank fusion, de-duplicated.

Also exposed as a LangChain ``BaseRetriever`` so LCEL chains compose with it.
"""

from __future__ import annotations

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from rag.config import Settings
from rag.errors import InputError
from rag.index import NoteIndex
from rag.models import Hit, Passage
from rag.sources import SourceScope, resolve
from rag.text import WORD, coverage, idf_weights, stems

MAX_QUESTION_CHARS = 2000


def rrf(rankings: list[list[str]], k: int = 60, weights: list[float] | None = None
        ) -> dict[str, float]:
    """Reciprocal rank fusion: score(d) = sum_i w_i / (k + rank_i(d)), ranks from 1."""
    weights = weights or [1.0] * len(rankings)
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, doc in enumerate(ranking, start=1):
            scores[doc] = scores.get(doc, 0.0) + weight / (k + rank)
    return scores


def clean_question(question: str) -> str:
    """Reject empty input; trim absurdly long input (the embedder truncates anyway)."""
    if question is None or not any(ch.isalnum() for ch in question):
        raise InputError("The question is empty: type a question about your notes.")
    return " ".join(question.split())[:MAX_QUESTION_CHARS]


def _shingles(text: str) -> set[str]:
    words = [w.lower() for w in WORD.findall(text)]
    return {" ".join(words[i:i + 3]) for i in range(max(len(words) - 2, 1))}


def near_duplicate(a: Hit, b: Hit, vectors: dict[str, np.ndarray], threshold: float) -> bool:
    """Same bullet list twice (copied between files or overlapping windows)."""
    va, vb = vectors.get(a.id), vectors.get(b.id)
    if va is not None and vb is not None and float(va @ vb) >= threshold:
        return True
    sa, sb = _shingles(a.chunk.text), _shingles(b.chunk.text)
    return bool(sa and sb) and len(sa & sb) / min(len(sa), len(sb)) >= 0.8


class HybridSearch:
    """The one retrieval path every feature uses (ask, explain, quiz, eval)."""

    def __init__(self, settings: Settings, index: NoteIndex | None = None):
        self.settings = settings
        self.index = index or NoteIndex(settings)
        # quiz and topics list chunks themselves: show them the sources
        if settings.storage.sources:
            self.index = SourceScope(self.index, settings.storage.sources)

    def source_files(self, sources: list[str] | None = None) -> set[str] | None:
        """The files answers may cite: those the sources name (default: the ``sources``
        setting); None when every file may be cited."""
        chosen = self.settings.storage.sources if sources is None else sources
        if not chosen:
            return None
        return resolve((c.file for c in self.index.chunks().values()), chosen)

    def hits(self, question: str, k: int | None = None, mode: str = "hybrid",
             sources: list[str] | None = None, qvec: np.ndarray | None = None) -> list[Hit]:
        """Top-k hits; mode is 'hybrid' (chunk vectors + BM25 + best-line vectors, fused and
        re-ranked), or 'dense' / 'bm25' alone (to measure the parts). ``sources`` (files or
        folders) filters all three lists before fusion, so every hit comes from them. ``qvec``:
        the question's vector when the caller already has it (the chain reuses it)."""
        question = clean_question(question)
        k = k or self.settings.retrieval.k
        n = max(self.settings.retrieval.fetch_k, k)
        files = self.source_files(sources)
        if qvec is None:
            qvec = self.index.embedder.encode([question])[0]
        dense = self.index.dense_search(qvec, n, files) if mode != "bm25" else []
        sparse = self.index.bm25_search(question, n, files) if mode != "dense" else []
        if mode != "hybrid":
            lines = []
        elif files is None:
            lines = self.index.lines.search(qvec, n)
        else:  # over-fetch every chunk's best line, then keep the chosen files'
            lines = [(cid, s) for cid, s in self.index.lines.search(qvec, 1 << 30)
                     if (c := self.index.chunk(cid)) is not None and c.file in files][:n]
        fused = rrf(
            [[i for i, _ in dense], [i for i, _ in sparse], [i for i, _ in lines]],
            k=self.settings.retrieval.rrf_k,
            weights=[self.settings.retrieval.dense_weight, self.settings.retrieval.bm25_weight,
                     self.settings.retrieval.lines_weight],
        )
        dense_map, bm25_map = dict(dense), dict(sparse)
        depth = max(self.settings.retrieval.rerank_depth, k)
        order = sorted(fused, key=fused.get, reverse=True)[:depth]
        vectors = self.index.vectors(order)
        # The single-retriever modes exist to measure the parts: no rerank there.
        scores = self.rerank(question, order, fused) if mode == "hybrid" else fused
        hits: list[Hit] = []
        dedup = self.settings.retrieval.dedup_threshold
        for cid in sorted(scores, key=scores.get, reverse=True):
            chunk = self.index.chunk(cid)
            if chunk is None or cid not in vectors:
                continue  # written by an unfinished ingest: not part of the live index yet
            sim = dense_map.get(cid)
            if sim is None:
                sim = float(vectors[cid] @ qvec)
            hit = Hit(cid, chunk, scores[cid], sim, bm25_map.get(cid, 0.0))
            if any(near_duplicate(hit, h, vectors, dedup) for h in hits):
                continue
            hits.append(hit)
            if len(hits) == k:
                break
        return hits

    def rerank(self, question: str, order: list[str], fused: dict[str, float]
               ) -> dict[str, float]:
        """Fused rank score plus how much of the question a passage (and its best line)
        covers, IDF-weighted: lifts the passage that has all the asked-for facts."""
        if not order:
            return {}
        df = self.index.term_df()
        weights = idf_weights(stems(question), df, max(len(self.index.chunks()), 1))
        top = max(fused[c] for c in order)
        scores = {}
        for cid in order:
            chunk = self.index.chunk(cid)
            lines = [stems(line) for line in [chunk.heading, *chunk.text.split("\n")]] \
                if chunk else []
            best_line, whole = coverage(weights, lines)
            scores[cid] = (fused[cid] / top + self.settings.retrieval.rerank_line_weight * best_line
                           + self.settings.retrieval.rerank_coverage_weight * whole)
        return scores

    def retrieve(self, question: str, k: int | None = None, mode: str = "hybrid"
                 ) -> list[Passage]:
        return [h.passage() for h in self.hits(question, k, mode)]

    def as_retriever(self, k: int | None = None) -> "NotesRetriever":
        return NotesRetriever(search=self, k=k or self.settings.retrieval.k)


class NotesRetriever(BaseRetriever):
    """LangChain retriever over the hybrid search; metadata carries the citation fields."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    search: HybridSearch
    k: int = 5

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        """``k`` passed at invoke time (``retriever.invoke(q, k=1)``) overrides the default."""
        return [
            Document(
                page_content=h.chunk.text,
                metadata={**h.passage().model_dump(exclude={"text"}), "dense": h.dense,
                          "bm25": h.bm25, "id": h.id},
            )
            for h in self.search.hits(query, k or self.k)
        ]
