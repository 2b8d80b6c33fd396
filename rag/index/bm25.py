"""The BM25 side index: built from the chunks in Chroma, cached on disk for one revision of the
collection, searched with the question's stemmed words; it also counts the document
frequencies of terms the rerank weighs them by."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from rag.models import Chunk
from rag.text import STEMMER, stems, term_pairs

log = logging.getLogger(__name__)


def tokenize(texts: list[str]):
    """BM25 tokens: lower-cased, English stop words removed, Snowball-stemmed."""
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", stemmer=STEMMER, show_progress=False)


class Bm25Index:
    """The chunks of one collection revision, their BM25 model and term statistics."""

    def __init__(self, folder: Path, schema: int):
        self.folder = folder
        self.schema = schema
        self.revision: str | None = None
        self.ids: list[str] = []
        self.chunks: dict[str, Chunk] = {}
        self._bm25 = None
        self._df: dict[str, int] | None = None

    def is_current(self, revision: str) -> bool:
        return self._bm25 is not None and self.revision == revision

    def load(self, revision: str, read: Callable[[], Iterable[tuple[str, Chunk]]]) -> None:
        """Load the cache if it was saved for ``revision``, else build it from ``read()``."""
        import bm25s

        try:
            meta = json.loads((self.folder / "studyrag.json").read_text(encoding="utf-8"))
            if meta.get("revision") != revision or meta.get("schema") != self.schema:
                raise ValueError("stale")
            self._bm25 = bm25s.BM25.load(str(self.folder / "bm25"))
            self.ids = meta["ids"]
            self.chunks = {cid: Chunk(**c) for cid, c in zip(self.ids, meta["chunks"])}
        except Exception:
            self._build(revision, list(read()))
        self.revision = revision
        self._df = None

    def _build(self, revision: str, pairs: list[tuple[str, Chunk]]) -> None:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s forces DEBUG on import
        self.ids = [cid for cid, _ in pairs]
        self.chunks = dict(pairs)
        retriever = bm25s.BM25()
        if pairs:
            retriever.index(tokenize([c.embed_text for _, c in pairs]), show_progress=False)
        self._bm25 = retriever
        tmp = self.folder.with_name(self.folder.name + ".tmp")
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True, exist_ok=True)
            if pairs:
                retriever.save(str(tmp / "bm25"))
            (tmp / "studyrag.json").write_text(json.dumps({
                "revision": revision, "schema": self.schema, "ids": self.ids,
                "chunks": [c.__dict__ for _, c in pairs],
            }), encoding="utf-8")
            shutil.rmtree(self.folder, ignore_errors=True)
            tmp.rename(self.folder)
        except OSError as exc:  # read-only or full disk: the in-memory index still works
            log.warning("Could not save the BM25 cache in %s (%s).", self.folder, exc)

    def search(self, query: str, n: int, files: set[str] | None = None
               ) -> list[tuple[str, float]]:
        """BM25 top n; ``files`` keeps only chunks of those files (masked before ranking)."""
        if not self.ids:
            return []
        tokens = tokenize([query])
        if not tokens.vocab:
            return []
        n = min(n, len(self.ids))
        mask = None if files is None else np.array(
            [self.chunks[i].file in files for i in self.ids], dtype=np.float32)
        docs, scores = self._bm25.retrieve(tokens, k=n, show_progress=False, n_threads=1,
                                           weight_mask=mask)
        return [(self.ids[d], float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]

    def term_df(self) -> dict[str, int]:
        """Document frequency of content terms (the rerank's IDF weights) and of adjacent
        term pairs, keyed "a b" (so a name like "Glacier Instant Retrieval" can be unknown
        even though each of its words is known)."""
        if self._df is None:
            df: dict[str, int] = {}
            for c in self.chunks.values():
                for term in stems(c.embed_text) | term_pairs(c.embed_text):
                    df[term] = df.get(term, 0) + 1
            self._df = df
        return self._df
