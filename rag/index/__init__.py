"""The Chroma index (embedded or server) plus a BM25 side index, kept in sync incrementally.

Chroma is the source of truth: every chunk carries its source folder, file, heading, lines and
the hash of the file it came from, so any app instance pointed at the same Chroma server can
rebuild its local BM25 cache from it. A change of embedding model or chunking settings gives a
new collection name (fingerprint), so it rebuilds cleanly instead of mixing vectors.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.chunking import chunk_note
from rag.config import Settings
from rag.errors import (
    ChromaAuthError,
    ConfigError,
    IndexMissingError,
    IndexUnavailableError,
    StudyragError,
)
from rag.loading import Skipped, check_notes_dir, iter_note_paths, load_file
from rag.models import Chunk
from rag.lines import LineIndex
from rag.text import stems, term_pairs

log = logging.getLogger(__name__)
SCHEMA_VERSION = 5  # bump when loading or chunking changes what chunks are made
_PAGE = 2000
_CLIENT_LOCK = threading.Lock()
ProgressFn = Callable[[int, int, str], None]


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


def fingerprint(settings: Settings) -> str:
    """Identity of everything that changes the vectors or the chunk boundaries."""
    raw = json.dumps(
        [SCHEMA_VERSION, settings.embedding_model, settings.chunk_size,
         settings.chunk_overlap, settings.min_chunk_chars]
        + [settings.embedding_max_tokens],
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:10]


def chunk_to_meta(chunk: Chunk, source: str, file_sha: str) -> dict:
    return {
        "source": source, "file": chunk.file, "heading": chunk.heading,
        "start_line": chunk.start_line, "end_line": chunk.end_line,
        "title": chunk.title, "file_sha": file_sha, "chunk_hash": chunk.hash,
        **({"page": chunk.page} if chunk.page is not None else {}),
        **({"tags": ",".join(chunk.tags)} if chunk.tags else {}),
    }


def meta_to_chunk(meta: dict, text: str) -> Chunk:
    return Chunk(
        file=meta["file"], heading=meta.get("heading", ""), start_line=int(meta["start_line"]),
        end_line=int(meta["end_line"]), text=text, title=meta.get("title", ""),
        hash=meta.get("chunk_hash", ""), page=meta.get("page"),
        tags=tuple(t for t in meta.get("tags", "").split(",") if t),
    )


def _refused_status(exc: Exception) -> int | None:
    """401/403 when the server or its proxy turned the token down (retrying cannot help)."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status is None and hasattr(exc, "code") and callable(exc.code):  # chromadb's own auth
        status = exc.code()
    return status if status in (401, 403) else None


def _auth_error(settings: Settings, status: int) -> ChromaAuthError:
    where = f"Chroma server {settings.chroma_host}:{settings.chroma_port}"
    if not settings.chroma_token:
        return ChromaAuthError(
            f"{where} refused the request (HTTP {status}): it needs a token; set chroma_token "
            "(STUDYRAG_CHROMA_TOKEN).")
    return ChromaAuthError(
        f"{where} refused the token (HTTP {status}); check chroma_token "
        f"(STUDYRAG_CHROMA_TOKEN) and chroma_token_header (now {settings.chroma_token_header}).")


def open_client(settings: Settings):
    """Embedded PersistentClient by default; HttpClient with retries when a host is set."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_host:
        deadline = time.monotonic() + settings.chroma_timeout_s
        delay, last = 0.25, None
        while True:
            try:
                import httpx

                # chromadb's own HTTP session has no timeout and its constructor already talks
                # to the server: probe first, so a hung server cannot hang us.
                httpx.get(f"http://{settings.chroma_host}:{settings.chroma_port}/api/v2/"
                          "heartbeat", headers=settings.chroma_headers,
                          timeout=settings.chroma_timeout_s).raise_for_status()
                client = chromadb.HttpClient(
                    host=settings.chroma_host, port=settings.chroma_port,
                    headers=settings.chroma_headers, settings=chroma_settings,
                )
                # chromadb's HTTP session has no timeout: a stopped server would hang us.
                session = getattr(getattr(client, "_server", None), "_session", None)
                if session is not None:
                    session.timeout = httpx.Timeout(3 * settings.chroma_timeout_s,
                                                    connect=settings.chroma_timeout_s)
                client.heartbeat()
                return client
            except Exception as exc:  # connection refused, DNS, timeouts...
                status = _refused_status(exc)
                if status:
                    raise _auth_error(settings, status) from None
                last = exc
            if time.monotonic() + delay > deadline:
                break
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        raise IndexUnavailableError(
            f"Chroma server {settings.chroma_host}:{settings.chroma_port} is not reachable "
            f"({type(last).__name__}); start it with `chroma run --path DIR --port "
            f"{settings.chroma_port}` or unset STUDYRAG_CHROMA_HOST to use the local index."
        )
    path = settings.index_dir / "chroma"
    try:
        # chromadb's per-folder client cache is not thread-safe (the app warms up in a thread).
        with _CLIENT_LOCK:
            if not (path / "chroma.sqlite3").is_file():
                _forget_chroma_system(path)
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # home is a file, read-only, ...
                raise ConfigError(
                    f"Cannot create the index folder {path} ({exc.strerror or exc}); set "
                    "STUDYRAG_HOME to a writable folder."
                ) from None
            return chromadb.PersistentClient(path=str(path), settings=chroma_settings)
    except ConfigError:
        raise
    except Exception as exc:
        raise IndexUnavailableError(
            f"The index at {path} is damaged or from another version ({type(exc).__name__}); "
            "run `study ingest --rebuild`."
        ) from exc


def _forget_chroma_system(path: Path) -> None:
    """chromadb caches one client per folder; after the folder was deleted (or moved aside by
    rebuild) that cached client keeps serving, and writing into, the unlinked files."""
    try:
        from chromadb.api.shared_system_client import SharedSystemClient

        system = SharedSystemClient._identifier_to_system.pop(str(path), None)
        SharedSystemClient._identifier_to_refcount.pop(str(path), None)
        if system is not None:
            system.stop()
    except Exception as exc:  # private chromadb API: best effort
        log.debug("Could not drop the cached Chroma client for %s: %s", path, exc)


class NoteIndex:
    """Chunks in Chroma + BM25, with incremental sync of a notes folder."""

    def __init__(self, settings: Settings, embedder=None):
        self.settings = settings
        self._embedder = embedder
        self._client = None
        self._collection = None
        self._bm25 = None
        self._ids: list[str] = []
        self._chunks: dict[str, Chunk] = {}
        self._revision: str | None = None
        self._df: dict[str, int] | None = None
        self.name = f"{settings.collection}-{fingerprint(settings)}"
        self.lines = LineIndex(settings.index_dir / f"lines-{self.name}")

    # --- plumbing ------------------------------------------------------------------------
    @property
    def embedder(self):
        if self._embedder is None:
            from rag.embeddings import embedder_for

            self._embedder = embedder_for(self.settings)
        return self._embedder

    @property
    def client(self):
        if self._client is None:
            self._client = open_client(self.settings)
        return self._client

    def _call(self, what: str, fn, *args, **kwargs):
        """Run a Chroma call; connection and storage faults become one clear error."""
        try:
            return fn(*args, **kwargs)
        except StudyragError:
            raise
        except Exception as exc:
            where = (f"Chroma server {self.settings.chroma_host}:{self.settings.chroma_port}"
                     if self.settings.chroma_host else f"index at {self.settings.index_dir}")
            self._collection = None
            raise IndexUnavailableError(
                f"{what} failed on the {where}: {type(exc).__name__}: {str(exc)[:200]}. "
                "If the index is damaged, run `study ingest --rebuild`."
            ) from exc

    def _vanished(self) -> bool:
        """The embedded index folder was deleted under us: forget everything cached."""
        if self.settings.chroma_host or self._client is None:
            return False
        if (self.settings.index_dir / "chroma" / "chroma.sqlite3").is_file():
            return False
        self._client = self._collection = self._bm25 = self._revision = None
        return True

    def collection(self, create: bool = False):
        if self._vanished() and not create:
            raise IndexMissingError(
                f"The index folder {self.settings.index_dir} was deleted or moved while in "
                "use; run `study ingest` to rebuild it."
            )
        if self._collection is not None:
            return self._collection
        if create:
            self._collection = self._call(
                "Opening the collection", self.client.get_or_create_collection,
                name=self.name, embedding_function=None,
                metadata={"hnsw:space": "cosine", "schema": SCHEMA_VERSION,
                          "revision": uuid.uuid4().hex},
            )
            return self._collection
        names = {getattr(c, "name", c) for c in self._call("Listing", self.client.list_collections)}
        if self.name not in names:
            raise IndexMissingError(
                "No index for these settings yet: run `study ingest` (or `study ingest PATH`)."
            )
        self._collection = self._call(
            "Opening the collection", self.client.get_collection, name=self.name,
            embedding_function=None,
        )
        return self._collection

    def exists(self) -> bool:
        try:
            self.collection()
            return True
        except IndexMissingError:
            return False

    # --- ingest --------------------------------------------------------------------------
    def _drop_stale_collections(self) -> None:
        prefix = f"{self.settings.collection}-"
        current = f"{prefix}{fingerprint(self.settings)}"  # and its "-next" rebuild
        for c in self._call("Listing", self.client.list_collections):
            name = getattr(c, "name", c)
            if name.startswith(prefix) and not name.startswith(current):
                log.info("Dropping collection %s built with other settings", name)
                self._call("Deleting an old collection", self.client.delete_collection, name)

    def _existing(self, source: str) -> dict[str, tuple[str, list[str]]]:
        """file -> (file_sha, [chunk ids]) for one source folder, read from Chroma."""
        col = self.collection(create=True)
        out: dict[str, tuple[str, list[str]]] = {}
        offset = 0
        while True:
            got = self._call("Reading the index", col.get, where={"source": source},
                             include=["metadatas"], limit=_PAGE, offset=offset)
            for cid, meta in zip(got["ids"], got["metadatas"]):
                sha, ids = out.get(meta["file"], (meta["file_sha"], []))
                if meta["file_sha"] != sha:
                    sha = "mixed"  # a crashed earlier ingest: force a rewrite of this file
                ids.append(cid)
                out[meta["file"]] = (sha, ids)
            if len(got["ids"]) < _PAGE:
                return out
            offset += _PAGE

    def _move_damaged_aside(self) -> None:
        """An on-disk index that cannot even be opened has nothing to keep: clear it."""
        path = self.settings.index_dir
        if not self.settings.chroma_host and path.exists():
            aside = path.with_name(f"{path.name}.old-{int(time.time())}")
            path.rename(aside)
            shutil.rmtree(aside, ignore_errors=True)
        self._client = self._collection = None
        self._bm25 = None

    def _rebuild(self, folder: Path | None, progress: ProgressFn | None) -> IngestReport:
        """Build a complete new collection aside, then swap it in: a crash or Ctrl-C midway
        leaves the previous index answering."""
        try:
            self._call("Listing", self.client.list_collections)
        except IndexUnavailableError:
            self._move_damaged_aside()
        aside = NoteIndex(self.settings, self._embedder)
        aside.name = f"{self.name}-next"
        aside._client = self.client
        if aside.exists():
            self._call("Clearing an unfinished rebuild", self.client.delete_collection, aside.name)
            aside._collection = None
        report = aside.ingest(folder, progress)
        if self.exists():
            self._call("Swapping in the new index", self.client.delete_collection, self.name)
        self._call("Swapping in the new index", aside.collection().modify, name=self.name)
        self._collection = None
        self._bm25 = None
        self.load_side_index()
        return report

    def ingest(self, folder: Path | None = None, progress: ProgressFn | None = None,
               rebuild: bool = False) -> IngestReport:
        """Sync one notes folder into the index: add, replace and remove per file hash.
        ``rebuild`` builds everything anew (aside, then swapped in)."""
        if rebuild:
            return self._rebuild(folder, progress)
        start = time.perf_counter()
        root = check_notes_dir(folder or self.settings.notes_dir)
        source = str(root)
        report = IngestReport(folder=source)
        self._drop_stale_collections()
        existing = self._existing(source)
        col = self.collection(create=True)
        key = source_key(root)
        seen: set[str] = set()
        pending: list[tuple[Chunk, str]] = []
        stale_ids: list[str] = []
        max_bytes = int(self.settings.max_file_mb * 1_000_000)
        paths = list(iter_note_paths(root))  # names only: each file is read when its turn comes
        for i, path in enumerate(paths, start=1):
            item = load_file(path, root, max_bytes, self.settings.index_dir / "documents")
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
            chunks = chunk_note(item, self.settings.chunk_size, self.settings.chunk_overlap,
                                self.settings.min_chunk_chars)
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
            if len(pending) >= 512:
                self._add(col, pending, source, key)
                pending = []
        if pending:
            self._add(col, pending, source, key)
        for rel, (_, ids) in existing.items():
            if rel not in seen:
                report.removed_files += 1
                stale_ids.extend(ids)
        # New chunks are in before old ones go: a crash in between leaves a usable index.
        for i in range(0, len(stale_ids), _PAGE):
            self._call("Removing old chunks", col.delete, ids=stale_ids[i:i + _PAGE])
        if report.added_files or report.updated_files or report.removed_files:
            self._new_revision(col)
        self.load_side_index()
        if len(self._ids) != self.count():
            # Chunks written by an interrupted ingest (same file hashes, so "unchanged" now)
            # were never published to the BM25 side index: publish them now.
            self._new_revision(col)
            self.load_side_index()
        report.seconds = time.perf_counter() - start
        return report

    def _add(self, col, items: list[tuple[Chunk, str]], source: str, key: str) -> None:
        items = list({f"{key}:{c.id}": (c, sha) for c, sha in items}.values())  # unique ids
        chunks = [c for c, _ in items]
        vectors = self.embedder.encode([c.embed_text for c in chunks])
        self._call(
            "Writing chunks", col.upsert,
            ids=[f"{key}:{c.id}" for c in chunks],
            embeddings=vectors,
            documents=[c.text for c in chunks],
            metadatas=[chunk_to_meta(c, source, sha) for c, sha in items],
        )

    def _new_revision(self, col) -> None:
        """Mark the collection changed so every instance rebuilds its BM25 cache."""
        meta = {k: v for k, v in (col.metadata or {}).items() if not k.startswith("hnsw:")}
        meta.update(revision=uuid.uuid4().hex, indexed_at=time.time())
        self._call("Updating the index", col.modify, metadata=meta)
        self._bm25 = None

    def remove_folder(self, folder: Path) -> int:
        """Drop every chunk of one notes folder; returns how many went."""
        source = str(Path(folder).expanduser().resolve())
        ids = [i for _, ids in self._existing(source).values() for i in ids]
        for i in range(0, len(ids), _PAGE):
            self._call("Removing chunks", self.collection().delete, ids=ids[i:i + _PAGE])
        if ids:
            self._new_revision(self.collection())
        return len(ids)

    # --- BM25 side index -----------------------------------------------------------------
    @property
    def _bm25_dir(self) -> Path:
        return self.settings.index_dir / f"bm25-{self.name}"

    def _all_chunks(self) -> Iterable[tuple[str, Chunk]]:
        col = self.collection()
        offset = 0
        while True:
            got = self._call("Reading the index", col.get, include=["metadatas", "documents"],
                             limit=_PAGE, offset=offset)
            for cid, meta, doc in zip(got["ids"], got["metadatas"], got["documents"]):
                yield cid, meta_to_chunk(meta, doc)
            if len(got["ids"]) < _PAGE:
                return
            offset += _PAGE

    def load_side_index(self) -> None:
        """Load the BM25 cache if it matches the collection's revision, else rebuild it."""
        import bm25s

        col = self.collection()
        revision = (col.metadata or {}).get("revision", "")
        if self._bm25 is not None and self._revision == revision:
            return
        folder = self._bm25_dir
        try:
            meta = json.loads((folder / "studyrag.json").read_text(encoding="utf-8"))
            if meta.get("revision") != revision or meta.get("schema") != SCHEMA_VERSION:
                raise ValueError("stale")
            self._bm25 = bm25s.BM25.load(str(folder / "bm25"))
            self._ids = meta["ids"]
            self._chunks = {cid: Chunk(**c) for cid, c in zip(self._ids, meta["chunks"])}
        except Exception:
            self._build_bm25(revision)
        self._revision = revision
        self._df = None
        self.lines.refresh(revision, self._chunks, lambda: self.embedder)

    def _build_bm25(self, revision: str) -> None:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s forces DEBUG on import
        pairs = list(self._all_chunks())
        self._ids = [cid for cid, _ in pairs]
        self._chunks = dict(pairs)
        retriever = bm25s.BM25()
        if pairs:
            retriever.index(tokenize([c.embed_text for _, c in pairs]), show_progress=False)
        self._bm25 = retriever
        folder = self._bm25_dir
        tmp = folder.with_name(folder.name + ".tmp")
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True, exist_ok=True)
            if pairs:
                retriever.save(str(tmp / "bm25"))
            (tmp / "studyrag.json").write_text(json.dumps({
                "revision": revision, "schema": SCHEMA_VERSION, "ids": self._ids,
                "chunks": [c.__dict__ for _, c in pairs],
            }), encoding="utf-8")
            shutil.rmtree(folder, ignore_errors=True)
            tmp.rename(folder)
        except OSError as exc:  # read-only or full disk: the in-memory index still works
            log.warning("Could not save the BM25 cache in %s (%s).", folder, exc)

    # --- search --------------------------------------------------------------------------
    def chunk(self, cid: str) -> Chunk | None:
        self.load_side_index()
        return self._chunks.get(cid)

    def chunks(self) -> dict[str, Chunk]:
        self.load_side_index()
        return self._chunks

    def term_df(self) -> dict[str, int]:
        """Document frequency of content terms (the rerank's IDF weights) and of adjacent
        term pairs, keyed "a b" (so a name like "Glacier Instant Retrieval" can be unknown
        even though each of its words is known)."""
        self.load_side_index()
        if self._df is None:
            df: dict[str, int] = {}
            for c in self._chunks.values():
                for term in stems(c.embed_text) | term_pairs(c.embed_text):
                    df[term] = df.get(term, 0) + 1
            self._df = df
        return self._df

    def count(self) -> int:
        return int(self._call("Counting", self.collection().count))

    def bm25_search(self, query: str, n: int, files: set[str] | None = None
                    ) -> list[tuple[str, float]]:
        """BM25 top n; ``files`` keeps only chunks of those files (masked before ranking)."""
        self.load_side_index()
        if not self._ids:
            return []
        tokens = tokenize([query])
        if not tokens.vocab:
            return []
        n = min(n, len(self._ids))
        mask = None if files is None else np.array(
            [self._chunks[i].file in files for i in self._ids], dtype=np.float32)
        docs, scores = self._bm25.retrieve(tokens, k=n, show_progress=False, n_threads=1,
                                           weight_mask=mask)
        return [(self._ids[d], float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]

    def dense_search(self, vector: np.ndarray, n: int, files: set[str] | None = None
                     ) -> list[tuple[str, float]]:
        """Nearest n chunks; ``files`` keeps only chunks of those files (Chroma's filter)."""
        col = self.collection()
        total = self.count()
        if total == 0 or files is not None and not files:
            return []
        where = None if files is None else {"file": {"$in": sorted(files)}}
        got = self._call("Searching", col.query, query_embeddings=[vector.tolist()],
                         n_results=min(n, total), where=where, include=["distances"])
        return [(cid, 1.0 - float(d)) for cid, d in zip(got["ids"][0], got["distances"][0])]

    def vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        got = self._call("Reading vectors", self.collection().get, ids=ids,
                         include=["embeddings"])
        return {cid: np.asarray(v, dtype=np.float32)
                for cid, v in zip(got["ids"], got["embeddings"])}

    def status(self) -> dict:
        """What is indexed: per-folder files and chunk counts, last indexed time."""
        col = self.collection()
        self.load_side_index()
        per_file: dict[str, int] = {}
        for c in self._chunks.values():
            per_file[c.file] = per_file.get(c.file, 0) + 1
        return {
            "collection": self.name, "chunks": len(self._chunks), "files": per_file,
            "indexed_at": (col.metadata or {}).get("indexed_at"),
            "server": (f"{self.settings.chroma_host}:{self.settings.chroma_port}"
                       if self.settings.chroma_host else None),
        }

    def folders(self) -> dict[str, dict[str, int]]:
        """Indexed source folders: {folder: {file: chunk count}} (read from Chroma)."""
        col = self.collection()
        out: dict[str, dict[str, int]] = {}
        offset = 0
        while True:
            got = self._call("Reading the index", col.get, include=["metadatas"],
                             limit=_PAGE, offset=offset)
            for meta in got["metadatas"]:
                files = out.setdefault(meta.get("source", "?"), {})
                files[meta["file"]] = files.get(meta["file"], 0) + 1
            if len(got["ids"]) < _PAGE:
                return out
            offset += _PAGE


def tokenize(texts: list[str]):
    """BM25 tokens: lower-cased, English stop words removed, Snowball-stemmed."""
    import bm25s

    try:
        import Stemmer

        stemmer = Stemmer.Stemmer("english")
    except ImportError:  # PyStemmer is optional; BM25 still works without stemming
        stemmer = None
    return bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False)
