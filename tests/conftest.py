"""Shared fixtures: one real index of the bundled notes per test session.

Tests point STUDYRAG_HOME at a temporary folder so nothing touches the user's data.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Converted models (ONNX export, dequantised GGUF) are shared by all tests of a run.
MODEL_CACHE = Path(os.environ.get("STUDYRAG_TEST_MODEL_CACHE") or
                   Path(__file__).resolve().parent.parent / ".pytest-model-cache")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test reads the developer's own config or data folder."""
    for key in list(os.environ):
        if key.startswith("STUDYRAG_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("STUDYRAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STUDYRAG_STORAGE__MODEL_CACHE_DIR", str(MODEL_CACHE))


@pytest.fixture(scope="session")
def corpus_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("corpus-home")


@pytest.fixture(scope="session")
def corpus_settings(corpus_home):
    """Settings for the bundled corpus, indexed once per session (real model, real Chroma)."""
    from rag.config import Settings
    from rag.index import NoteIndex

    settings = Settings(home=corpus_home,
                        storage={"notes_dir": CORPUS, "model_cache_dir": MODEL_CACHE},
                        answer={"backend": "extractive"})
    NoteIndex(settings).ingest()
    return settings


@pytest.fixture(scope="session")
def corpus_index(corpus_settings):
    from rag.index import NoteIndex

    return NoteIndex(corpus_settings)


@pytest.fixture(scope="session")
def search(corpus_settings, corpus_index):
    from rag.retrieval import HybridSearch

    return HybridSearch(corpus_settings, corpus_index)


@pytest.fixture(scope="session")
def tutor(corpus_settings, search):
    from rag.chains import Tutor

    return Tutor(corpus_settings, search)


@pytest.fixture
def corpus_env(monkeypatch, corpus_settings):
    monkeypatch.setenv("STUDYRAG_HOME", str(corpus_settings.home))
    monkeypatch.setenv("STUDYRAG_STORAGE__NOTES_DIR", str(corpus_settings.storage.notes_dir))
    monkeypatch.setenv("STUDYRAG_ANSWER__BACKEND", "extractive")
    return corpus_settings
