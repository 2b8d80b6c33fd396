"""Sidebar: generator backend and model (with a clear status), top-k, extractive mode, and
which of the indexed files every page draws on."""

from __future__ import annotations

import streamlit as st

from rag.config import Settings
from rag.generation.registry import AUTO, EXTRACTIVE, auto_candidates, backends, generator_names
from rag.ui import resources


def _defaults(settings: Settings) -> None:
    """Seed the widgets from the configured settings once per session."""
    st.session_state.setdefault("sb_backend", settings.answer.backend)
    st.session_state.setdefault("sb_model", settings.answer.model)
    st.session_state.setdefault("sb_k", settings.retrieval.k)
    st.session_state.setdefault("sb_extractive", settings.answer.backend == EXTRACTIVE)
    st.session_state.setdefault("sb_ollama_host", settings.answer.ollama_host)
    st.session_state.setdefault("sb_openai_base_url", settings.answer.openai_base_url)


def render(base: Settings) -> Settings:
    """Draw the sidebar and return this session's settings."""
    _defaults(base)
    with st.sidebar:
        st.markdown("#### :material/tune: Answering")
        extractive = st.toggle(
            "Extractive mode", key="sb_extractive",
            help="Answer only with sentences copied from your notes (no generator model).",
        )
        labels = {AUTO: "Auto (best available)",
                  **{name: b.label for name, b in backends().items()}}
        st.selectbox(
            "Generator backend", list(labels), format_func=labels.get, key="sb_backend",
            disabled=extractive,
        )
        backend = EXTRACTIVE if extractive else st.session_state["sb_backend"]
        if backend in generator_names():
            st.text_input("Model", key="sb_model", placeholder=backends()[backend].model_hint)
        if backend == "ollama":
            st.text_input("Ollama URL", key="sb_ollama_host")
        if backend == "openai":
            st.text_input("Endpoint URL", key="sb_openai_base_url",
                          placeholder="http://localhost:8000/v1")
        settings = resources.session_settings()
        _status(settings, backend)
        st.slider("Passages per question (top-k)", 1, 10, key="sb_k",
                  help="How many note passages the answer may draw on.")
        _sources(settings)
    return resources.session_settings()


def _indexed_files(settings: Settings) -> list[str]:
    """The indexed files, once the warm-up has loaded the index (none to pick before)."""
    if resources.warm_up(settings).is_alive():
        return []
    try:
        index = resources.get_index(settings)
        return sorted({c.file for c in index.chunks().values()}) if index.exists() else []
    except Exception:  # no index yet, server down: the pages say so
        return []


def _sources(settings: Settings) -> None:
    """A multiselect of indexed files: answers, practice and guides use only those chosen."""
    files = _indexed_files(settings)
    if not files:
        return
    st.markdown("#### :material/folder_open: Sources")
    chosen = st.session_state.get("sb_sources") or []
    st.session_state["sb_sources"] = [f for f in chosen if f in files]  # re-indexed since
    st.multiselect("Use only these notes", files, key="sb_sources", placeholder="All notes",
                   help="Answers, practice questions and study guides cite only these files.")


def _status(settings: Settings, backend: str) -> None:
    if backend == EXTRACTIVE:
        st.caption(":material/check_circle: Extractive answers are always available.")
        return
    try:
        rows = resources.backend_status(settings)
    except Exception as exc:  # status must never break the page
        st.warning(f"Could not check the generator: {exc}", icon=":material/warning:")
        return
    if rows is None:
        st.caption(":material/info: Generators are not installed in this build; answers are extractive.")
        return
    by_name = {r["name"]: r for r in rows}
    if backend == AUTO:
        usable = [by_name[n] for n in auto_candidates(settings)
                  if n in by_name and by_name[n]["usable"]]
        if usable:
            r = usable[0]
            st.caption(f":material/check_circle: Using **{r['name']}**" + (f" · `{r['model']}`" if r["model"] else ""))
        else:
            st.caption(":material/info: No generator is available, so answers are extractive.")
        return
    row = by_name.get(backend)
    if row is None:
        st.warning(f"Backend {backend} is unknown to this build.", icon=":material/warning:")
    elif row["usable"]:
        st.caption(f":material/check_circle: **{backend}** ready" + (f" · `{row['model']}`" if row["model"] else ""))
    else:
        st.warning(f"**{backend}** is unavailable: {row['detail']}  \n"
                   "Answers fall back to extractive mode until it is reachable.", icon=":material/warning:")
