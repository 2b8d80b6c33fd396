"""The note index: chunks in Chroma plus a BM25 side index, kept in sync incrementally.

Chroma is the source of truth (:mod:`rag.index.store`); the BM25 cache (:mod:`rag.index.bm25`)
and the line vectors (:mod:`rag.lines`) are rebuilt from it whenever its revision moves, so
any app instance pointed at the same Chroma server stays current. :mod:`rag.index.sync` diffs
a notes folder against the store. A change of embedding model or chunking settings gives a
new collection name (fingerprint), so it rebuilds cleanly instead of mixing vectors.

:class:`NoteIndex` is the one object the rest of the library holds; it lives here, beside the
schema version, so that the version read when an index is opened is this module's.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from rag.config import Settings
from rag.index.bm25 import Bm25Index, tokenize
from rag.index.store import ChromaStore, chunk_to_meta, meta_to_chunk, open_client
from rag.index import sync
from rag.index.sync import Batch, IngestReport, ProgressFn, source_key
from rag.lines import LineIndex
from rag.models import Chunk

__all__ = [
    "SCHEMA_VERSION", "IngestReport", "NoteIndex", "ProgressFn", "chunk_to_meta",
    "fingerprint", "meta_to_chunk", "open_client", "source_key", "tokenize",
]
SCHEMA_VERSION = 6  # bump when loading or chunking changes what chunks are made (6: fences after "- ")


def fingerprint(settings: Settings) -> str:
    """Identity of everything that changes the vectors or the chunk boundaries."""
    raw = json.dumps(
        [SCHEMA_VERSION, settings.embedding.model, settings.chunking.size,
         settings.chunking.overlap, settings.chunking.min_chars]
        + [settings.embedding.max_tokens]
        # int8 vectors are other vectors; fp32 keeps the fingerprint indexes were built with.
        + ([settings.embedding.precision] if settings.embedding.precision != "fp32" else []),
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:10]


class NoteIndex:
    """Chunks in Chroma + BM25, with incremental sync of a notes folder."""

    def __init__(self, settings: Settings, embedder=None):
        self.settings = settings
        self._embedder = embedder
        self.store = ChromaStore(settings, f"{settings.storage.collection}-{fingerprint(settings)}",
                                 SCHEMA_VERSION)
        self.bm25 = Bm25Index(settings.index_dir / f"bm25-{self.name}", SCHEMA_VERSION)
        self.lines = LineIndex(settings.index_dir / f"lines-{self.name}")

    @property
    def name(self) -> str:
        return self.store.name

    @property
    def embedder(self):
        if self._embedder is None:
            from rag.embeddings import embedder_for

            self._embedder = embedder_for(self.settings)
        return self._embedder

    @property
    def client(self):
        return self.store.client

    def collection(self, create: bool = False):
        return self.store.collection(create)

    def exists(self) -> bool:
        return self.store.exists()

    def count(self) -> int:
        return self.store.count()

    # --- ingest --------------------------------------------------------------------------
    def ingest(self, folder: Path | None = None, progress: ProgressFn | None = None,
               rebuild: bool = False) -> IngestReport:
        """Sync one notes folder into the index: add, replace and remove per file hash.
        ``rebuild`` builds everything anew (aside, then swapped in)."""
        start = time.perf_counter()
        if rebuild:
            report = sync.rebuild(self.store, lambda aside: sync.sync_folder(
                aside, self.settings, folder, self._add, progress))
        else:
            report = sync.sync_folder(self.store, self.settings, folder, self._add, progress)
        self.load_side_index()
        if len(self.bm25.ids) != self.count():
            # Chunks written by an interrupted ingest (same file hashes, so "unchanged" now)
            # were never published to the BM25 side index: publish them now.
            self.store.new_revision()
            self.load_side_index()
        report.seconds = time.perf_counter() - start
        return report

    def _add(self, store: ChromaStore, items: Batch, source: str, key: str) -> None:
        """The sync's writer: the model loads only once a batch needs embedding."""
        sync.write_batch(store, self.embedder, items, source, key)

    def remove_folder(self, folder: Path) -> int:
        """Drop every chunk of one notes folder; returns how many went."""
        return sync.remove_folder(self.store, folder)

    # --- side indexes --------------------------------------------------------------------
    def load_side_index(self) -> None:
        """Bring BM25 and the line vectors to the collection's revision (cache or rebuild)."""
        revision = self.store.revision()
        if self.bm25.is_current(revision):
            return
        self.bm25.load(revision, self.store.chunks)
        self.lines.refresh(revision, self.bm25.chunks, lambda: self.embedder)

    def chunk(self, cid: str) -> Chunk | None:
        return self.chunks().get(cid)

    def chunks(self) -> dict[str, Chunk]:
        self.load_side_index()
        return self.bm25.chunks

    def term_df(self) -> dict[str, int]:
        self.load_side_index()
        return self.bm25.term_df()

    # --- search --------------------------------------------------------------------------
    def bm25_search(self, query: str, n: int, files: set[str] | None = None
                    ) -> list[tuple[str, float]]:
        self.load_side_index()
        return self.bm25.search(query, n, files)

    def dense_search(self, vector: np.ndarray, n: int, files: set[str] | None = None
                     ) -> list[tuple[str, float]]:
        return self.store.nearest(vector, n, files)

    def vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        return self.store.vectors(ids)

    # --- reporting -----------------------------------------------------------------------
    def status(self) -> dict:
        """What is indexed: per-folder files and chunk counts, last indexed time."""
        indexed_at = self.store.metadata().get("indexed_at")
        chunks = self.chunks()
        per_file: dict[str, int] = {}
        for c in chunks.values():
            per_file[c.file] = per_file.get(c.file, 0) + 1
        return {
            "collection": self.name, "chunks": len(chunks), "files": per_file,
            "indexed_at": indexed_at,
            "server": (f"{self.settings.storage.chroma_host}:{self.settings.storage.chroma_port}"
                       if self.settings.storage.chroma_host else None),
        }

    def folders(self) -> dict[str, dict[str, int]]:
        """Indexed source folders: {folder: {file: chunk count}} (read from Chroma)."""
        out: dict[str, dict[str, int]] = {}
        for _, rec in self.store.records(["metadatas"]):
            meta = rec["metadatas"]
            files = out.setdefault(meta.get("source", "?"), {})
            files[meta["file"]] = files.get(meta["file"], 0) + 1
        return out
