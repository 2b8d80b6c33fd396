"""Study guide: the key lines of the notes on a topic, grouped by heading, each cited; the
numbers and limits to memorise; a Markdown download."""

from __future__ import annotations

import re

import streamlit as st

from rag.config import Settings
from rag.ui import resources
from rag.ui.common import md_escape, show_error


def build(settings: Settings, topic: str):
    """The guide for a topic (the only place that knows rag.guide's API)."""
    from rag.guide import GuideMaker

    return GuideMaker(resources.get_tutor(settings).search).build(topic)


def _topics(settings: Settings) -> list[str]:
    from rag.quiz import list_topics

    try:
        # The tutor's index: only the sources chosen in the sidebar.
        return [t.name for t in list_topics(resources.get_tutor(settings).search.index)]
    except Exception:  # no index yet: typing a topic still shows the real error
        return []


def _show(guide) -> None:
    if not guide.covered:
        st.info(guide.message, icon=":material/search_off:")
        return
    st.download_button("Download as Markdown", data=guide.to_markdown(),
                       file_name=f"study-guide-{re.sub(r'[^A-Za-z0-9]+', '-', guide.topic)}.md"
                       .replace("--", "-"), mime="text/markdown", key="gd_download",
                       on_click="ignore", icon=":material/download:")
    for section in guide.sections:
        st.subheader(section.heading)
        st.markdown("\n".join(f"- {md_escape(i.text)} :gray[— {md_escape(i.passage.short)}]"
                              for i in section.items))


def page() -> None:
    settings = resources.session_settings()
    st.title("Study guide")
    st.caption("The key lines of your notes on a topic, grouped by heading, each with the file "
               "and line it comes from; then the numbers and limits worth memorising.")
    names = _topics(settings)
    with st.form("gd_form"):
        topic = st.text_input("Topic", key="gd_topic", placeholder="e.g. S3 storage classes")
        picked = st.selectbox("…or pick a heading of your notes", [None, *names],
                              key="gd_pick", format_func=lambda t: "—" if t is None else t)
        go = st.form_submit_button("Make the guide", type="primary",
                                   icon=":material/menu_book:")
    if go:
        wanted = topic.strip() or (picked or "")
        try:
            with st.spinner("Reading your notes…"):
                st.session_state["gd_guide"] = build(settings, wanted)
        except Exception as exc:
            show_error(exc)
            return
    guide = st.session_state.get("gd_guide")
    if guide is not None:
        _show(guide)
