"""Process-wide heavy objects (``st.cache_resource``) and per-session settings.

The embedding model, the Chroma client (inside ``NoteIndex``) and the generator are created
once per server process and shared by every browser session; what a student types, asks and
answers lives in ``st.session_state`` and is never shared.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from functools import reduce
from pathlib import Path
from typing import Any

import streamlit as st

from rag.config import Settings, load_settings, nest

log = logging.getLogger(__name__)

# Settings that change what the index is (everything else is per-question behaviour).
INDEX_FIELDS = (
    "home", "storage.notes_dir", "storage.chroma_host", "storage.chroma_port",
    "storage.chroma_token", "storage.chroma_token_header", "storage.collection",
    "storage.max_file_mb", "embedding", "chunking",
)
# Sidebar widgets (session-state keys) that override the configured settings.
OVERRIDE_KEYS = {
    "sb_backend": "answer.backend", "sb_model": "answer.model", "sb_k": "retrieval.k",
    "sb_ollama_host": "answer.ollama_host", "sb_openai_base_url": "answer.openai_base_url",
    "sb_sources": "storage.sources",
}


def base_settings() -> Settings:
    """The configured settings (defaults < TOML < ``STUDYRAG_*`` environment)."""
    return load_settings()


def session_settings() -> Settings:
    """The configured settings with this browser session's sidebar choices applied."""
    settings = base_settings()
    update: dict[str, Any] = {}
    for key, name in OVERRIDE_KEYS.items():
        value = st.session_state.get(key)
        if value not in (None, ""):
            update[name] = value
    if st.session_state.get("sb_extractive"):
        update["answer.backend"] = "extractive"
    return settings.updated(**nest(update)) if update else settings


def settings_key(settings: Settings, fields: tuple[str, ...] | None = None) -> str:
    """The settings (or only ``fields``, dotted names) as a cache key."""
    data = settings.model_dump(mode="json")
    if fields:
        data = {f: reduce(dict.__getitem__, f.split("."), data) for f in fields}
    return json.dumps(data, sort_keys=True, default=str)


# --- the index (Chroma client + BM25 + embedder) ------------------------------------------
@st.cache_resource(show_spinner=False)
def _index(key: str, _settings: Settings):
    from rag.index import NoteIndex

    return NoteIndex(_settings)


@st.cache_resource(show_spinner=False)
def _lock(key: str) -> threading.RLock:
    return threading.RLock()


def get_index(settings: Settings):
    """One ``NoteIndex`` per index identity per process (shared by all sessions)."""
    return _index(settings_key(settings, INDEX_FIELDS), settings)


def index_lock(settings: Settings) -> threading.RLock:
    """Serialises writes (ingest, remove) to one index across sessions."""
    return _lock(settings_key(settings, INDEX_FIELDS))


@st.cache_resource(show_spinner=False)
def _warm(key: str, _settings: Settings) -> threading.Thread:
    def run() -> None:
        started = time.perf_counter()
        try:
            index = get_index(_settings)
            index.embedder.encode(["warm up"])
            if index.exists():
                index.load_side_index()
        except Exception as exc:  # the page that needs it will report the real error
            log.warning("Warm-up failed: %s", exc)
        log.info("Warm-up took %.1f s", time.perf_counter() - started)

    thread = threading.Thread(target=run, name="studyrag-warmup", daemon=True)
    thread.start()
    return thread


def warm_up(settings: Settings) -> threading.Thread:
    """Load the embedder and BM25 in the background so the first page renders at once."""
    return _warm(settings_key(settings, INDEX_FIELDS), settings)


def wait_warm(settings: Settings, timeout: float = 120.0) -> None:
    warm_up(settings).join(timeout)


# --- answering ------------------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=16)
def _tutor(key: str, _settings: Settings):
    from rag.chains import Tutor
    from rag.retrieval import HybridSearch

    index = get_index(_settings)
    return Tutor(_settings, HybridSearch(_settings, index))


def get_tutor(settings: Settings):
    """The answer chain for these settings (generator models are cached by ``rag``)."""
    wait_warm(settings)
    return _tutor(settings_key(settings), settings)


@st.cache_resource(show_spinner=False, max_entries=16)
def _explainer(key: str, _settings: Settings):
    from rag.explain import Explainer

    return Explainer(get_tutor(_settings))


def get_explainer(settings: Settings):
    return _explainer(settings_key(settings), settings)


@st.cache_data(ttl=30, show_spinner=False)
def _backend_status(key: str, _settings: Settings) -> list[dict] | None:
    try:
        from rag.generation import backend_status
    except ImportError:
        return None
    return [
        {"name": s.name, "model": s.model, "usable": bool(s.usable), "detail": s.detail}
        for s in backend_status(_settings)
    ]


def backend_status(settings: Settings) -> list[dict] | None:
    """Generator backends and whether each is usable (cached 30 s); None if unsupported."""
    return _backend_status(settings_key(settings), settings)


def uploads_dir(settings: Settings) -> Path:
    return settings.home / "uploads"


# --- practice -------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def _progress(path: str):
    from rag.progress import Progress

    return Progress(Path(path))


def get_progress(settings: Settings):
    """The SQLite progress store (one connection factory per database file)."""
    return _progress(str(settings.progress_db))
