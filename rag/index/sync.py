"""Keeping the store in step with a notes folder: a per-file hash diff (add, replace, remove),
and the full rebuild that builds a new collection aside and swaps it in."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rag.chunking import chunk_note
from rag.config import Settings
from rag.errors import IndexUnavailableError
from rag.index.store import ChromaStore, chunk_to_meta
from rag.loading import Skipped, check_notes_dir, iter_note_paths, load_file
from rag.models import Chunk

log = logging.getLogger(__name__)
ProgressFn = Callable[[int, int, str], None]
Batch = list[tuple[Chunk, str]]  # chunks with the hash of the file they came from
Writer = Callable[[ChromaStore, Batch, str, str], None]  # (store, batch, source, key)
_BATCH = 512


@dataclass
class IngestReport:
    folder: str
    files: int = 0
    chunks: int = 0
    added_files: int = 0
    updated_files: int = 0
    unchanged_files: int = 0
    removed_files: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.files} files, {self.chunks} chunks ({self.added_files} added, "
            f"{self.updated_files} changed, {self.unchanged_files} unchanged, "
            f"{self.removed_files} removed), {len(self.skipped)} skipped, {self.seconds:.1f} s"
        )


def source_key(folder: Path) -> str:
    return hashlib.sha256(str(folder).encode()).hexdigest()[:8]


def write_batch(store: ChromaStore, embedder, items: Batch, source: str, key: str) -> None:
    """Embed and write one batch; ids are unique per folder (Chroma rejects duplicates)."""
    unique = {f"{key}:{c.id}": (c, sha) for c, sha in items}
    chunks = [c for c, _ in unique.values()]
    store.write(list(unique), embedder.encode([c.embed_text for c in chunks]),
                [c.text for c in chunks],
                [chunk_to_meta(c, source, sha) for c, sha in unique.values()])


def indexed_files(store: ChromaStore, source: str) -> dict[str, tuple[str, list[str]]]:
    """file -> (file_sha, [chunk ids]) for one source folder, read from Chroma."""
    store.collection(create=True)
    out: dict[str, tuple[str, list[str]]] = {}
    for cid, rec in store.records(["metadatas"], where={"source": source}):
        meta = rec["metadatas"]
        sha, ids = out.get(meta["file"], (meta["file_sha"], []))
        if meta["file_sha"] != sha:
            sha = "mixed"  # a crashed earlier ingest: force a rewrite of this file
        ids.append(cid)
        out[meta["file"]] = (sha, ids)
    return out


def sync_folder(store: ChromaStore, settings: Settings, folder: Path | None, write: Writer,
                progress: ProgressFn | None = None) -> IngestReport:
    """Add, replace and remove chunks per file hash; the revision moves when anything did."""
    root = check_notes_dir(folder or settings.storage.notes_dir)
    source = str(root)
    report = IngestReport(folder=source)
    store.drop_stale_collections()
    existing = indexed_files(store, source)
    key = source_key(root)
    seen: set[str] = set()
    pending: Batch = []
    stale_ids: list[str] = []
    max_bytes = int(settings.storage.max_file_mb * 1_000_000)
    paths = list(iter_note_paths(root))  # names only: each file is read when its turn comes
    for i, path in enumerate(paths, start=1):
        item = load_file(path, root, max_bytes, settings.index_dir / "documents")
        if progress:
            progress(i, len(paths), getattr(item, "rel", getattr(item, "file", "")))
        if isinstance(item, Skipped):
            log.warning("%s", item)
            report.skipped.append(item)
            if item.file in existing:
                seen.add(item.file)  # keep the last good version of a now-broken file
            continue
        seen.add(item.rel)
        report.files += 1
        old = existing.get(item.rel)
        if old and old[0] == item.sha256:
            report.unchanged_files += 1
            report.chunks += len(old[1])
            continue
        chunks = chunk_note(item, settings.chunking.size, settings.chunking.overlap,
                            settings.chunking.min_chars)
        # Identical pieces of one long line share an id: keep one (Chroma rejects dupes).
        chunks = list({c.id: c for c in chunks}.values())
        report.chunks += len(chunks)
        if old:
            report.updated_files += 1
            # Chunks that did not change keep their id: re-written, so not stale.
            fresh_ids = {f"{key}:{c.id}" for c in chunks}
            stale_ids.extend(i for i in old[1] if i not in fresh_ids)
        else:
            report.added_files += 1
        pending.extend((c, item.sha256) for c in chunks)
        if len(pending) >= _BATCH:
            write(store, pending, source, key)
            pending = []
    if pending:
        write(store, pending, source, key)
    for rel, (_, ids) in existing.items():
        if rel not in seen:
            report.removed_files += 1
            stale_ids.extend(ids)
    # New chunks are in before old ones go: a crash in between leaves a usable index.
    store.delete("Removing old chunks", stale_ids)
    if report.added_files or report.updated_files or report.removed_files:
        store.new_revision()
    return report


def rebuild(store: ChromaStore, fill: Callable[[ChromaStore], IngestReport]) -> IngestReport:
    """Fill a complete new collection aside, then swap it in: a crash or Ctrl-C midway leaves
    the previous index answering."""
    try:
        store.collection_names()
    except IndexUnavailableError:
        store.move_damaged_aside()
    aside = store.aside("-next")
    if aside.exists():
        aside.drop_collection("Clearing an unfinished rebuild")
    report = fill(aside)
    aside.replace(store)
    return report


def remove_folder(store: ChromaStore, folder: Path) -> int:
    """Drop every chunk of one notes folder; returns how many went."""
    source = str(Path(folder).expanduser().resolve())
    ids = [i for _, ids in indexed_files(store, source).values() for i in ids]
    store.delete("Removing chunks", ids)
    if ids:
        store.new_revision()
    return len(ids)
