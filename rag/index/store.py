"""The Chroma side of the index: the client (embedded, or a server with retries), one collection
and the one paged reader over it, and the revision that tells every instance its caches are
stale.

Every chunk carries its source folder, file, heading, lines and the hash of the file it came
from, so any instance pointed at the same Chroma server can rebuild its caches from it.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Settings
from rag.errors import (
    ChromaAuthError,
    ConfigError,
    IndexMissingError,
    IndexUnavailableError,
    StudyragError,
)
from rag.models import Chunk

log = logging.getLogger(__name__)
PAGE = 2000  # records per Chroma read or delete
_CLIENT_LOCK = threading.Lock()


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
    where = f"Chroma server {settings.storage.chroma_server}"
    if not settings.storage.chroma_token:
        return ChromaAuthError(
            f"{where} refused the request (HTTP {status}): it needs a token; set chroma_token "
            "(STUDYRAG_STORAGE__CHROMA_TOKEN).")
    return ChromaAuthError(
        f"{where} refused the token (HTTP {status}); check chroma_token "
        "(STUDYRAG_STORAGE__CHROMA_TOKEN) and chroma_token_header "
        f"(now {settings.storage.chroma_token_header}).")


def open_client(settings: Settings):
    """Embedded PersistentClient by default; HttpClient with retries when a host is set."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    store = settings.storage
    if store.chroma_host:
        deadline = time.monotonic() + store.chroma_timeout_s
        delay, last = 0.25, None
        while True:
            try:
                import httpx

                # chromadb's own HTTP session has no timeout and its constructor already talks
                # to the server: probe first, so a hung server cannot hang us.
                httpx.get(f"http://{store.chroma_server}/api/v2/heartbeat",
                          headers=store.chroma_headers,
                          timeout=store.chroma_timeout_s).raise_for_status()
                client = chromadb.HttpClient(
                    host=store.chroma_host, port=store.chroma_port,
                    headers=store.chroma_headers, settings=chroma_settings,
                )
                # chromadb's HTTP session has no timeout: a stopped server would hang us.
                session = getattr(getattr(client, "_server", None), "_session", None)
                if session is not None:
                    session.timeout = httpx.Timeout(3 * settings.storage.chroma_timeout_s,
                                                    connect=settings.storage.chroma_timeout_s)
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
            f"Chroma server {store.chroma_server} is not reachable "
            f"({type(last).__name__}); start it with `chroma run --path DIR --port "
            f"{store.chroma_port}` or unset STUDYRAG_STORAGE__CHROMA_HOST to use the local "
            "index."
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


class ChromaStore:
    """One named collection; every Chroma call goes through :meth:`call`, so connection and
    storage faults surface as one clear error."""

    def __init__(self, settings: Settings, name: str, schema: int, client=None,
                 live: str | None = None):
        self.settings = settings
        self.name = name
        self.live = live or name  # the collection answering now; a rebuild's name extends it
        self.schema = schema
        self._client = client
        self._collection = None
        self._opened = 0.0  # time.monotonic() when the collection handle was fetched

    @property
    def client(self):
        if self._client is None:
            self._client = open_client(self.settings)
        return self._client

    def aside(self, suffix: str) -> ChromaStore:
        """A store for another collection on the same client (a rebuild writes there)."""
        return ChromaStore(self.settings, f"{self.name}{suffix}", self.schema, self.client,
                           self.live)

    def call(self, what: str, fn: Callable, *args, **kwargs):
        """Run a Chroma call; connection and storage faults become one clear error."""
        try:
            return fn(*args, **kwargs)
        except StudyragError:
            raise
        except Exception as exc:
            store = self.settings.storage
            where = (f"Chroma server {store.chroma_server}" if store.chroma_host
                     else f"index at {self.settings.index_dir}")
            self._collection = None
            raise IndexUnavailableError(
                f"{what} failed on the {where}: {type(exc).__name__}: {str(exc)[:200]}. "
                "If the index is damaged, run `study ingest --rebuild`."
            ) from exc

    def _vanished(self) -> bool:
        """The embedded index folder was deleted under us: forget the client and collection."""
        if self.settings.storage.chroma_host or self._client is None:
            return False
        if (self.settings.index_dir / "chroma" / "chroma.sqlite3").is_file():
            return False
        self._client = self._collection = None
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
            self._collection = self.call(
                "Opening the collection", self.client.get_or_create_collection,
                name=self.name, embedding_function=None,
                metadata={"hnsw:space": "cosine", "schema": self.schema,
                          "revision": uuid.uuid4().hex},
            )
            self._opened = time.monotonic()
            return self._collection
        if self.name not in self.collection_names():
            raise IndexMissingError(
                "No index for these settings yet: run `study ingest` (or `study ingest PATH`)."
            )
        self._collection = self.call(
            "Opening the collection", self.client.get_collection, name=self.name,
            embedding_function=None,
        )
        self._opened = time.monotonic()
        return self._collection

    def on_collection(self, what: str, method: str, *args, **kwargs):
        """Call a method of the collection, re-opened by name once when Chroma no longer
        knows the cached handle: another process's rebuild swapped a new collection in."""
        try:
            return self.call(what, getattr(self.collection(), method), *args, **kwargs)
        except IndexUnavailableError as exc:
            if type(exc.__cause__).__name__ != "NotFoundError":
                raise
            log.info("The collection was replaced under this reader; re-opening it")
            return self.call(what, getattr(self.collection(), method), *args, **kwargs)

    def exists(self) -> bool:
        try:
            self.collection()
            return True
        except IndexMissingError:
            return False

    def collection_names(self) -> list[str]:
        return [getattr(c, "name", c) for c in self.call("Listing", self.client.list_collections)]

    def drop_collection(self, what: str, name: str | None = None) -> None:
        self.call(what, self.client.delete_collection, name or self.name)
        if name is None:
            self._collection = None

    def drop_stale_collections(self) -> None:
        """Collections built with other settings (another fingerprint) are dead weight."""
        prefix = f"{self.settings.storage.collection}-"
        for name in self.collection_names():
            if name.startswith(prefix) and not name.startswith(self.live):  # nor its "-next"
                log.info("Dropping collection %s built with other settings", name)
                self.drop_collection("Deleting an old collection", name)

    def replace(self, target: ChromaStore) -> None:
        """Swap this collection in under ``target``'s name, dropping what was there."""
        if target.exists():
            target.drop_collection("Swapping in the new index")
        self.call("Swapping in the new index", self.collection().modify, name=target.name)
        self._collection = None
        self.name = target.name

    def move_damaged_aside(self) -> None:
        """An on-disk index that cannot even be opened has nothing to keep: clear it."""
        path = self.settings.index_dir
        if not self.settings.storage.chroma_host and path.exists():
            aside = path.with_name(f"{path.name}.old-{int(time.time())}")
            path.rename(aside)
            shutil.rmtree(aside, ignore_errors=True)
        self._client = self._collection = None

    # --- records -----------------------------------------------------------------------
    def records(self, include: list[str], where: dict | None = None
                ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(id, {"metadatas": ..., "documents": ...}) of every record, a page at a time."""
        offset = 0
        while True:
            got = self.on_collection("Reading the index", "get", where=where, include=include,
                                     limit=PAGE, offset=offset)
            for i, cid in enumerate(got["ids"]):
                yield cid, {field: got[field][i] for field in include}
            if len(got["ids"]) < PAGE:
                return
            offset += PAGE

    def chunks(self) -> Iterator[tuple[str, Chunk]]:
        for cid, rec in self.records(["metadatas", "documents"]):
            yield cid, meta_to_chunk(rec["metadatas"], rec["documents"])

    def write(self, ids: list[str], vectors, texts: list[str], metas: list[dict]) -> None:
        self.call("Writing chunks", self.collection(create=True).upsert, ids=ids,
                  embeddings=vectors, documents=texts, metadatas=metas)

    def delete(self, what: str, ids: list[str]) -> None:
        for i in range(0, len(ids), PAGE):
            self.on_collection(what, "delete", ids=ids[i:i + PAGE])

    def count(self) -> int:
        return int(self.on_collection("Counting", "count"))

    def metadata(self) -> dict:
        return self.collection().metadata or {}

    def revision(self) -> str:
        """The collection's revision as Chroma has it now: a handle older than
        ``storage.revision_check_s`` is fetched again (a handle's metadata is a snapshot, so
        a long-running reader would never see another process's ingest)."""
        if (self._collection is not None and time.monotonic() - self._opened
                >= self.settings.storage.revision_check_s):
            self._collection = None
        return self.metadata().get("revision", "")

    def new_revision(self) -> None:
        """Mark the collection changed so every instance rebuilds its caches."""
        meta = {k: v for k, v in self.metadata().items() if not k.startswith("hnsw:")}
        meta.update(revision=uuid.uuid4().hex, indexed_at=time.time())
        self.call("Updating the index", self.collection().modify, metadata=meta)

    # --- search ------------------------------------------------------------------------
    def nearest(self, vector: np.ndarray, n: int, files: set[str] | None = None
                ) -> list[tuple[str, float]]:
        """Nearest n chunks by cosine similarity; ``files`` keeps only those files' chunks."""
        total = self.count()
        if total == 0 or files is not None and not files:
            return []
        where = None if files is None else {"file": {"$in": sorted(files)}}
        got = self.on_collection("Searching", "query", query_embeddings=[vector.tolist()],
                                 n_results=min(n, total), where=where, include=["distances"])
        return [(cid, 1.0 - float(d)) for cid, d in zip(got["ids"][0], got["distances"][0])]

    def vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        got = self.on_collection("Reading vectors", "get", ids=ids, include=["embeddings"])
        return {cid: np.asarray(v, dtype=np.float32)
                for cid, v in zip(got["ids"], got["embeddings"])}
