"""Helpers for the Streamlit AppTest suites: the app, one page of it, and the error check."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 180


def whole_app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=TIMEOUT)


def page_app(name: str) -> AppTest:
    """One page without the navigation menu (what ``main(only=...)`` renders)."""
    return AppTest.from_string(
        f"from rag.ui.app import main\nmain(only={name!r})", default_timeout=TIMEOUT)


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
