"""The study-loop pages in Streamlit's AppTest: Practice (due today, self-rating, downloads)
and Study guide, on the real corpus index and a real progress database."""

from __future__ import annotations

import pytest

pytest.importorskip("streamlit")

from apptest import no_errors, page_app  # noqa: E402

from rag.progress import Progress  # noqa: E402


@pytest.fixture
def store(tmp_path, monkeypatch):
    from rag.ui import resources

    progress = Progress(tmp_path / "progress.sqlite3")  # the shared home's history stays clean
    monkeypatch.setattr(resources, "get_progress", lambda settings: progress)
    return progress


def test_practice_shows_due_today_and_takes_a_self_rating(corpus_env, store, tutor):
    from rag.quiz import QuizMaker

    missed, known = QuizMaker(tutor, seed=4).make("EC2", 2)
    store.record(missed.id, missed.topic, (missed.answer_index + 1) % len(missed.options), missed.answer_index,
                 question_json=missed.model_dump_json())
    store.record(known.id, known.topic, known.answer_index, known.answer_index,
                 question_json=known.model_dump_json())
    at = page_app("practice").run()
    no_errors(at)
    due = next(i.value for i in at.info if "due today" in i.value)
    assert "**1 question due today**" in due and missed.topic in due
    labels = [d.proto.label for d in at.get("download_button")]
    assert labels == ["Anki deck (.apkg)", "CSV"]

    at.button(key="pr_review").click().run()
    no_errors(at)
    assert [q.id for q in at.session_state["pr_round"]["questions"]] == [missed.id]
    at.radio(key="pr_choice_0").set_value(missed.answer_index).run()
    at.button(key="pr_submit_0").click().run()
    no_errors(at)
    assert store.card(missed.id).last_rating == 3  # saved at once as Good
    rating = at.button_group(key="pr_rate_0")
    assert rating.options and rating.value == "Good"
    rating.set_value("Easy").run()
    no_errors(at)
    assert store.card(missed.id).last_rating == 4 and store.attempts() == 3
    assert any(c.value.startswith("Next review in ") for c in at.caption)


def test_guide_page_builds_a_cited_guide_with_markdown_download(corpus_env):
    at = page_app("guide").run()
    no_errors(at)
    assert at.title[0].value == "Study guide"
    assert len(at.selectbox(key="gd_pick").options) > 3  # the notes' headings to pick from
    at.text_input(key="gd_topic").set_value("placement groups")
    at.button[0].click().run()  # the form's submit button
    no_errors(at)
    guide = at.session_state["gd_guide"]
    assert guide.covered
    assert [s.value for s in at.subheader] == [s.heading for s in guide.sections]
    body = "\n".join(m.value for m in at.markdown)
    first = guide.sections[0].items[0]
    assert first.passage.file in body and f"line {first.passage.start_line}" in body
    assert [d.proto.label for d in at.get("download_button")] == ["Download as Markdown"]

    at.text_input(key="gd_topic").set_value("Lightsail")
    at.button[0].click().run()
    no_errors(at)
    assert [i.value for i in at.info] == ["Your notes don't cover 'Lightsail'."]
    assert not at.get("download_button")
