"""The backend registry: a third-party backend installed as a real distribution (a dist-info
with an ``entry_points.txt`` on ``sys.path``) shows up everywhere the built-in ones do."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.cli import build_parser
from rag.config import load_settings
from rag.errors import ConfigError
from rag.generation import backend_status, backends, get_chat_model, resolve_backend

PLUGIN = '''
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from rag.generation import Backend, BackendStatus


def _status(settings):
    return BackendStatus("echo", "echo-1", True, "answers from a list.")


BACKEND = Backend("echo", "Echo (a plugin)", _status,
                  factory=lambda settings, status: FakeListChatModel(responses=["Echo [1]."]))
NOT_A_BACKEND = 42
'''


def _install(root: Path, entry_points: str) -> None:
    """A minimal installed distribution ``studyrag-echo`` whose module is ``studyrag_echo``."""
    (root / "studyrag_echo.py").write_text(PLUGIN, encoding="utf-8")
    info = root / "studyrag_echo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: studyrag-echo\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(
        f"[studyrag.backends]\n{entry_points}", encoding="utf-8")


@pytest.fixture
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on ``sys.path`` for one test; the registry is re-read before and after."""
    monkeypatch.syspath_prepend(str(tmp_path))
    backends.cache_clear()
    yield tmp_path
    backends.cache_clear()
    sys.modules.pop("studyrag_echo", None)


def _backend_choices(command: str) -> list[str]:
    parser = build_parser([command])
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return next(a for a in sub._actions if a.dest == "backend").choices


def test_entry_point_backend_is_registered_offered_and_valid(plugin_path: Path) -> None:
    _install(plugin_path, "echo = studyrag_echo:BACKEND\n")

    assert list(backends()) == ["extractive", "embedded", "ollama", "openai", "echo"]
    assert "echo" in _backend_choices("ask") and "echo" in _backend_choices("models")
    settings = load_settings(answer={"backend": "echo"})
    assert settings.answer.backend == "echo"
    assert {s.name: s for s in backend_status(settings)}["echo"].usable
    assert get_chat_model(settings).invoke("hi").content == "Echo [1]."
    assert resolve_backend(settings.updated(answer={"backend": "auto"})) != "echo"
    # Only a backend that says it writes is trusted with study text.
    from rag.generation import writes
    assert [n for n in backends() if writes(n)] == ["ollama", "openai"]


def test_broken_or_clashing_plugins_are_skipped(plugin_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    _install(plugin_path, "gone = studyrag_echo:MISSING\nodd = studyrag_echo:NOT_A_BACKEND\n")

    with caplog.at_level(logging.WARNING, logger="rag.generation.registry"):
        assert list(backends()) == ["extractive", "embedded", "ollama", "openai"]
    assert "gone" in caplog.text and "odd" in caplog.text


def test_unknown_backend_setting_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="backend.*auto, extractive, embedded, ollama, openai"):
        load_settings(answer={"backend": "gpt-17"})
