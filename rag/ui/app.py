"""The Streamlit app: page setup, first-run indexing, sidebar and navigation.

``app.py`` at the repository root only calls :func:`main`. Tests call ``main(only="practice")``
to render one page without the navigation menu.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import socket
from collections.abc import Callable

import streamlit as st

from rag.ui import resources
from rag.ui.common import friendly_errors, show_error

log = logging.getLogger(__name__)


def _page(name: str) -> Callable[[], None]:
    def run() -> None:
        import importlib

        module = importlib.import_module(f"rag.ui.{name}")
        with friendly_errors():
            module.page()

    run.__name__ = name  # st.Page derives the URL path from the function name
    return run


PAGES = {
    "chat": ("Ask", ":material/forum:"),
    "explain": ("Explain my mistake", ":material/psychology_alt:"),
    "practice": ("Practice", ":material/school:"),
    "guide": ("Study guide", ":material/menu_book:"),
    "notes": ("Notes", ":material/folder_open:"),
    "quality": ("Quality", ":material/monitoring:"),
}


def go(name: str) -> None:
    """Switch to another page (in single-page test mode: remember the request)."""
    pages = st.session_state.get("_pages")
    st.session_state["requested_page"] = name
    if pages and name in pages:
        st.switch_page(pages[name])
    st.rerun()


def quiet() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name in ("chromadb", "httpx", "sentence_transformers", "transformers", "bm25s"):
        logging.getLogger(name).setLevel(logging.ERROR)


@functools.lru_cache(maxsize=8)
def _reachable_from_network(address: str) -> bool:
    """Whether a bind address lets other machines in; an unresolvable name counts as yes."""
    if address.startswith("unix://"):
        return False
    if not address:  # Streamlit then binds "::", every interface
        return True
    try:
        infos = socket.getaddrinfo(address.strip("[]"), None)
        return not all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)
    except (OSError, ValueError):
        return True


def network_notice() -> None:
    """Say so on every page when the app is served beyond this machine: whoever reaches it
    can read the notes through chat and the passage viewer."""
    address = (st.get_option("server.address") or "").strip()
    if _reachable_from_network(address):
        where = f"`{address}`" if address else "every network interface"
        st.warning(f"This app listens on {where}: other machines on your network can open it "
                   "and read your notes. To keep it on this machine, set "
                   '`server.address = "127.0.0.1"` in `.streamlit/config.toml`.',
                   icon=":material/public:")


def ensure_index(settings) -> bool:
    """On a fresh machine, build the index of the configured notes once (with progress)."""
    key = resources.settings_key(settings, resources.INDEX_FIELDS)
    if st.session_state.get("_index_ok") == key:
        return True
    index = resources.get_index(settings)
    if not index.exists():
        with resources.index_lock(settings):
            if not index.exists():
                from rag.ui.notes import ingest_with_progress

                with st.container(border=True):
                    st.markdown("### Welcome to studyrag")
                    st.write(f"Indexing your notes in `{settings.storage.notes_dir}` for the first "
                             "time; this happens once (later starts are instant).")
                    report = ingest_with_progress(settings, settings.storage.notes_dir,
                                                  "Indexing notes")
                    st.success(f"Ready: {report.summary()}", icon=":material/check_circle:")
                    for s in report.skipped:
                        st.warning(f"Skipped `{s.file}`: {s.reason}", icon=":material/warning:")
    st.session_state["_index_ok"] = key
    return True


def main(only: str | None = None) -> None:
    quiet()
    st.set_page_config(page_title="studyrag — study your notes", page_icon=":material/menu_book:",
                       layout="wide", initial_sidebar_state="expanded")
    st.html("<style>.block-container{padding-top:2.2rem;max-width:1100px}</style>")
    network_notice()
    try:
        base = resources.base_settings()
    except Exception as exc:  # a broken config file: say so, nothing else can work
        show_error(exc)
        return
    resources.warm_up(base)
    from rag.ui import sidebar

    settings = sidebar.render(base)
    try:
        ensure_index(settings)
    except Exception as exc:
        show_error(exc)
    if only:
        _page(only)()
        return
    pages = {name: st.Page(_page(name), title=title, icon=icon, default=name == "chat")
             for name, (title, icon) in PAGES.items()}
    st.session_state["_pages"] = pages
    nav = st.navigation(list(pages.values()), position="sidebar")
    with st.sidebar:
        st.divider()
        st.caption("Answers come only from your notes; every fact carries a citation.")
    nav.run()
