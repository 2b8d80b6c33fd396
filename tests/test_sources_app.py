"""The app: a sidebar multiselect of indexed files that every page uses, and the passage
viewer naming a document's page or slide."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("streamlit")
from apptest import whole_app  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

ONE = "exam-scenarios.md"


def _sources_widget(at: AppTest):
    """The sidebar multiselect (it appears once the warm-up has loaded the index)."""
    for _ in range(120):
        found = [m for m in at.sidebar.multiselect if m.key == "sb_sources"]
        if found:
            return found[0]
        time.sleep(1)
        at.run()
    raise AssertionError("no sources multiselect in the sidebar")


def test_sidebar_sources_limit_the_answers_citations(corpus_env):
    question = "What is the maximum execution time of a Lambda function?"
    at = whole_app().run()
    widget = _sources_widget(at)
    assert ONE in widget.options and len(widget.options) == 5
    at.chat_input[0].set_value(question).run()
    cited = [e.label for e in at.expander if e.label.startswith("[")]
    assert cited and any(ONE not in label for label in cited), "the filter must have work"
    _sources_widget(at).set_value([ONE]).run()
    assert not at.exception and not at.error
    at.chat_input[0].set_value(question).run()
    assert not at.exception and not at.error
    last = [e.label for e in at.expander if e.label.startswith("[")][len(cited):]
    assert last and all(f"{ONE} " in label for label in last)


def test_passage_viewer_names_the_page_or_slide():
    def page():
        from rag.models import Passage
        from rag.ui.common import location_label, show_passage

        slide = Passage(file="slides/db.pptx", heading="Aurora", start_line=9, end_line=11,
                        text="# Aurora\nUp to 15 read replicas", page=3)
        import streamlit as st

        st.write(location_label(slide))
        show_passage(slide, ["Up to 15 read replicas"])
        show_passage(Passage(file="a.md", heading="", start_line=1, end_line=1, text="x"))

    at = AppTest.from_function(page).run()
    assert not at.exception
    assert "slides/db.pptx › Aurora · slide 3 · lines 9–11" in at.markdown[0].value
    captions = [c.value for c in at.caption]
    assert "**slide 3**" in captions[0] and "page" not in captions[1]
    html = "".join(h.proto.body for h in at.get("html"))
    assert '<mark class="sr-hl">Up to 15 read replicas</mark>' in html


def test_practice_and_guide_topics_come_from_the_chosen_sources(corpus_env):
    def page():
        import streamlit as st

        from rag.ui import guide, practice, resources

        st.session_state["sb_sources"] = ["exam-scenarios.md"]
        settings = resources.session_settings()
        st.session_state["got"] = (practice.topics(settings), guide._topics(settings),
                                   practice.topics(settings.updated(storage={"sources": []})))

    at = AppTest.from_function(page, default_timeout=180).run()
    assert not at.exception, [e.value for e in at.exception]
    chosen, in_guide, everything = at.session_state["got"]
    assert chosen and chosen == in_guide and set(chosen) < set(everything)
