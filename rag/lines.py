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
    """Per-chunk line vectors and a flat matrix of them for search.

    Saved as append-only shards (``lines-N.npy`` + ``lines-N.json``, the JSON written last as
    the shard's commit mark): new chunks are embedded and saved ``batch_chunks`` at a time, so
    a large first index holds one batch of new vectors beside the kept ones and an interrupted
    pass keeps every finished batch. Shards are merged into one when they hold more rows of
    deleted chunks than of live ones (or there are too many of them)."""

    MAX_SHARDS = 64

    def __init__(self, folder: Path, batch_chunks: int = 512):
        self.folder = folder
        self.batch_chunks = batch_chunks
        self.revision: str | None = None
        self._by_hash: dict[str, np.ndarray] = {}
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        self._owner: list[str] = []  # chunk id of each matrix row
        self._loaded = False
        self._shards: list[str] = []  # shard names on disk, oldest first
        self._disk_rows = 0  # rows in those shards, live or not

    def refresh(self, revision: str, chunks: dict[str, Chunk],
                embedder: Callable[[], object]) -> None:
        """Bring the vectors in line with ``chunks``, embedding only unseen chunk hashes
        (``embedder()`` is called only then, so a loaded cache needs no model)."""
        if revision == self.revision and self._owner:
            return
        if not self._loaded:
            self._load()
        missing = list({c.hash: c for c in chunks.values() if c.hash not in self._by_hash}
                       .values())
        for start in range(0, len(missing), self.batch_chunks):
            batch = missing[start:start + self.batch_chunks]
            texts = [line_texts(c) for c in batch]
            flat = [t for group in texts for t in group]
            vectors = embedder().encode(flat) if flat else np.zeros((0, 0), np.float32)
            at = 0
            for chunk, group in zip(batch, texts):
                self._by_hash[chunk.hash] = np.asarray(vectors[at:at + len(group)],
                                                       dtype=np.float32)
                at += len(group)
            self._save_shard([c.hash for c in batch])
        live = {c.hash for c in chunks.values()}
        self._by_hash = {h: v for h, v in self._by_hash.items() if h in live}
        rows, owner, spans = [], [], []
        for cid, chunk in chunks.items():
            vectors = self._by_hash.get(chunk.hash)
            if vectors is not None and len(vectors):
                spans.append((chunk.hash, len(owner), len(vectors)))
                rows.append(vectors)
                owner.extend([cid] * len(vectors))
        self._matrix = np.vstack(rows) if rows else np.zeros((0, 0), dtype=np.float32)
        for key, at, count in spans:  # views into the matrix: the vectors are held once
            self._by_hash[key] = self._matrix[at:at + count]
        self._owner = owner
        self.revision = revision
        kept = sum(len(v) for v in self._by_hash.values())
        if self._disk_rows - kept > kept or len(self._shards) > self.MAX_SHARDS:
            self._compact()

    def vectors(self, chunk: Chunk) -> np.ndarray | None:
        """One row per line of :func:`rag.extractive.line_texts` (None: not embedded)."""
        return self._by_hash.get(chunk.hash)

    def search(self, qvec: np.ndarray, n: int) -> list[tuple[str, float]]:
        """Chunks ranked by their best line's cosine similarity to the question."""
        if not self._owner:
            return []
        sims = self._matrix @ qvec
        # Sort only the best rows (a chunk has a few dozen lines at most); all of them only
        # when those do not hold n chunks.
        head = max(64 * n, 4096)
        best = self._best(sims, np.argpartition(-sims, head - 1)[:head], n) \
            if head < len(sims) else {}
        if len(best) < n:
            best = self._best(sims, np.arange(len(sims)), n)
        return list(best.items())

    def _best(self, sims: np.ndarray, rows: np.ndarray, n: int) -> dict[str, float]:
        best: dict[str, float] = {}
        for row in rows[np.argsort(-sims[rows], kind="stable")]:
            cid = self._owner[row]
            if cid not in best:
                best[cid] = float(sims[row])
                if len(best) == n:
                    break
        return best

    # --- persistence ---------------------------------------------------------------------
    def _load(self) -> None:
        """Every committed shard; a damaged or half-written one is skipped (its chunks are
        embedded again)."""
        self._loaded = True
        for meta_path in sorted(self.folder.glob("lines*.json"),
                                key=lambda path: _shard_number(path.stem)):
            name = meta_path.stem
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                data = np.load(self.folder / f"{name}.npy")
                hashes, counts = list(meta["hashes"]), [int(c) for c in meta["counts"]]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if sum(counts) != len(data) or len(hashes) != len(counts):
                continue
            at = 0
            for key, count in zip(hashes, counts):
                self._by_hash[key] = data[at:at + count]
                at += count
            self._shards.append(name)
            self._disk_rows += len(data)

    def _next_shard(self) -> str:
        return f"lines-{max(map(_shard_number, self._shards), default=-1) + 1}"

    def _save_shard(self, hashes: list[str]) -> None:
        name = self._next_shard()
        if self._write(name, hashes):
            self._shards.append(name)
            self._disk_rows += sum(len(self._by_hash[h]) for h in hashes)

    def _compact(self) -> None:
        """One shard of the live vectors replaces all the others."""
        old, name = list(self._shards), self._next_shard()
        if not self._write(name, list(self._by_hash)):
            return
        for shard in old:
            for suffix in (".json", ".npy"):
                (self.folder / f"{shard}{suffix}").unlink(missing_ok=True)
        self._shards = [name]
        self._disk_rows = sum(len(v) for v in self._by_hash.values())

    def _write(self, name: str, hashes: list[str]) -> bool:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            parts = [self._by_hash[h] for h in hashes if len(self._by_hash[h])]
            np.save(self.folder / f"{name}.npy",
                    np.vstack(parts) if parts else np.zeros((0, 0), np.float32))
            (self.folder / f"{name}.json").write_text(json.dumps({
                "hashes": hashes, "counts": [len(self._by_hash[h]) for h in hashes]}),
                encoding="utf-8")
            return True
        except OSError as exc:  # read-only or full disk: the in-memory vectors still work
            log.warning("Could not save the line vectors in %s (%s).", self.folder, exc)
            return False


def _shard_number(name: str) -> int:
    """N of "lines-N" (-1 for the one-file cache of older versions, "lines")."""
    tail = name.rpartition("-")[2]
    return int(tail) if tail.isdigit() else -1
