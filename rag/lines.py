"""Vectors of every note line, in its heading context, kept beside the chunk index.

Two readers: dense retrieval over lines (a chunk ranks by its best line, so one precise
bullet in a long passage is found even when the passage as a whole reads like something else)
and the answer composer, which compares the question with each line of the top passages
without embedding them again per question. Vectors are keyed by chunk hash, so an ingest
embeds only the chunks that changed; the cache lives in the data folder and follows the
collection's revision (another instance sharing a Chroma server rebuilds it when anyone
re-ingests).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rag.extractive import line_texts
from rag.models import Chunk

log = logging.getLogger(__name__)


class LineIndex:
    """Per-chunk line vectors and a flat matrix of them for search."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.revision: str | None = None
        self._by_hash: dict[str, np.ndarray] = {}
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        self._owner: list[str] = []  # chunk id of each matrix row

    def refresh(self, revision: str, chunks: dict[str, Chunk],
                embedder: Callable[[], object]) -> None:
        """Bring the vectors in line with ``chunks``, embedding only unseen chunk hashes
        (``embedder()`` is called only then, so a loaded cache needs no model)."""
        if revision == self.revision and self._owner:
            return
        if not self._by_hash:
            self._load()
        missing = [c for c in chunks.values() if c.hash not in self._by_hash]
        if missing:
            texts = [line_texts(c) for c in missing]
            flat = [t for group in texts for t in group]
            vectors = embedder().encode(flat) if flat else np.zeros((0, 0), np.float32)
            start = 0
            for chunk, group in zip(missing, texts):
                self._by_hash[chunk.hash] = np.asarray(vectors[start:start + len(group)],
                                                       dtype=np.float32)
                start += len(group)
        live = {c.hash for c in chunks.values()}
        self._by_hash = {h: v for h, v in self._by_hash.items() if h in live}
        rows, owner = [], []
        for cid, chunk in chunks.items():
            vectors = self._by_hash.get(chunk.hash)
            if vectors is not None and len(vectors):
                rows.append(vectors)
                owner.extend([cid] * len(vectors))
        self._matrix = np.vstack(rows) if rows else np.zeros((0, 0), dtype=np.float32)
        self._owner = owner
        self.revision = revision
        if missing:
            self._save()

    def vectors(self, chunk: Chunk) -> np.ndarray | None:
        """One row per line of :func:`rag.extractive.line_texts` (None: not embedded)."""
        return self._by_hash.get(chunk.hash)

    def search(self, qvec: np.ndarray, n: int) -> list[tuple[str, float]]:
        """Chunks ranked by their best line's cosine similarity to the question."""
        if not self._owner:
            return []
        sims = self._matrix @ qvec
        best: dict[str, float] = {}
        for row in np.argsort(-sims):
            cid = self._owner[row]
            if cid not in best:
                best[cid] = float(sims[row])
                if len(best) == n:
                    break
        return list(best.items())

    # --- persistence ---------------------------------------------------------------------
    def _load(self) -> None:
        try:
            meta = json.loads((self.folder / "lines.json").read_text(encoding="utf-8"))
            data = np.load(self.folder / "lines.npy")
            hashes, counts = list(meta["hashes"]), [int(c) for c in meta["counts"]]
        except (OSError, ValueError, KeyError, TypeError):
            return  # missing or damaged cache: the vectors are embedded again
        if sum(counts) != len(data) or len(hashes) != len(counts):
            return  # written by an interrupted save: rebuild
        start = 0
        for key, count in zip(hashes, counts):
            self._by_hash[key] = data[start:start + count]
            start += count

    def _save(self) -> None:
        hashes = list(self._by_hash)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            parts = [self._by_hash[h] for h in hashes if len(self._by_hash[h])]
            np.save(self.folder / "lines.npy.tmp.npy",
                    np.vstack(parts) if parts else np.zeros((0, 0), np.float32))
            (self.folder / "lines.npy.tmp.npy").replace(self.folder / "lines.npy")
            (self.folder / "lines.json").write_text(json.dumps({
                "hashes": hashes, "counts": [len(self._by_hash[h]) for h in hashes]}),
                encoding="utf-8")
        except OSError as exc:  # read-only or full disk: the in-memory vectors still work
            log.warning("Could not save the line vectors in %s (%s).", self.folder, exc)
