"""Streamlit AppTest tests of every page (in-process; the session index is shared).

The corpus index is built once per session by ``corpus_settings`` (conftest); each test points
the app at it through ``STUDYRAG_*`` variables, so nothing here embeds the corpus again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("streamlit")

sys.path.insert(0, str(Path(__file__).parent))
from apptest import no_errors, page_app, whole_app  # noqa: E402
from openai_stub import OpenAIStub  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def test_app_loads_with_navigation_and_sidebar(corpus_env):
    at = whole_app().run()
    no_errors(at)
    assert at.title[0].value == "Ask your notes"
    assert at.toggle(key="sb_extractive").value is True
    assert at.slider(key="sb_k").value == corpus_env.retrieval.k
    assert len(at.chat_input) == 1


def test_chat_answer_has_citations_and_follow_up(corpus_env):
    at = whole_app().run()
    at.chat_input[0].set_value("What is a cluster placement group?").run()
    no_errors(at)
    assistant = [m for m in at.chat_message if m.name == "assistant"]
    assert len(assistant) == 1
    text = assistant[0].markdown[0].value
    assert "placement group" in text.lower() and "[1]" in text
    labels = [e.label for e in at.expander]
    assert labels and labels[0].startswith("[1] ") and "lines" in labels[0]
    html = "".join(h.proto.body for h in at.get("html"))
    assert '<mark class="sr-hl">' in html  # the cited sentence is highlighted
    # A follow-up uses the conversation (the history reaches the tutor).
    at.chat_input[0].set_value("What is the spread strategy?").run()
    no_errors(at)
    assert len([m for m in at.chat_message if m.name == "assistant"]) == 2
    assert len(at.session_state["chat"]) == 4
    # "Show sources" opens every citation of that answer.
    at.button(key="src_1").click().run()
    no_errors(at)
    assert at.session_state["sources_1"] is True


def test_question_sent_while_an_answer_streams_keeps_both(corpus_env, monkeypatch):
    """A run stopped mid-answer (what a second question sent during streaming does) must not
    drop the first answer: the next run finishes it, then answers the second."""
    with OpenAIStub(delay_s=3.0) as stub:  # the first answer takes a while to start
        monkeypatch.setenv("STUDYRAG_ANSWER__BACKEND", "openai")
        monkeypatch.setenv("STUDYRAG_ANSWER__OPENAI_BASE_URL", stub.base_url)
        monkeypatch.setenv("STUDYRAG_ANSWER__MODEL", stub.models[0])
        monkeypatch.setenv("STUDYRAG_ANSWER__CONDENSE_WITH_MODEL", "false")
        at = whole_app().run()
        at.chat_input[0].set_value("What is Amazon S3?")
        with pytest.raises(RuntimeError, match="timed out"):
            at.run(timeout=1.0)  # Streamlit stops the run while the answer is on its way
        at.chat_input[0].set_value("What is a cluster placement group?").run()
    no_errors(at)
    chat = at.session_state["chat"]
    assert [m["role"] for m in chat] == ["user", "assistant"] * 2
    assert [m["content"] for m in chat[::2]] == ["What is Amazon S3?",
                                                 "What is a cluster placement group?"]
    first, second = chat[1]["answer"], chat[3]["answer"]
    assert first.question == "What is Amazon S3?" and first.citations
    assert "placement group" in second.answer.lower() and second.citations
    assert len([m for m in at.chat_message if m.name == "assistant"]) == 2


def test_chat_not_covered_shows_nearest_topics(corpus_env):
    at = whole_app().run()
    at.chat_input[0].set_value("How do I bake sourdough bread at home?").run()
    no_errors(at)
    answer = at.session_state["chat"][-1]["answer"]
    assert answer.abstained
    assert any("Nearest topics" in i.value for i in at.info)


def test_chat_marks_unsupported_sentences():
    from rag.models import Answer, Sentence
    from rag.ui.chat import answer_markdown

    answer = Answer(question="q", answer="a [1] b", sentences=[
        Sentence(text="Supported fact.", citations=[1]),
        Sentence(text="Made-up claim.", citations=[1], supported=False, score=0.1)])
    md = answer_markdown(answer)
    assert "Supported fact. **[1]**" in md
    assert "not supported" in md and ":orange-background[" in md


def test_empty_question_is_a_friendly_error(corpus_env):
    at = whole_app().run()
    at.chat_input[0].set_value("?!").run()
    assert not at.exception
    assert at.error and "empty" in at.error[0].value.lower()
    assert "Traceback" not in at.error[0].value


def test_explain_page_gives_structured_cited_explanation(corpus_env):
    row = json.loads((REPO / "evals/datasets/explain_dev.jsonl").read_text().splitlines()[0])
    at = page_app("explain").run()
    no_errors(at)
    at.text_area(key="ex_question").set_value(row["question"])
    for letter, text in row["options"].items():
        at.text_input(key=f"ex_opt_{letter}").set_value(text)
    at.run()
    at.selectbox(key="ex_chosen").set_value(row["chosen"])
    at.selectbox(key="ex_correct").set_value(row["correct"])
    at.button(key="ex_go").click().run()
    no_errors(at)
    result = at.session_state["ex_result"]
    assert not result.abstained and result.citations
    shown = "\n".join(m.value for m in at.markdown)
    assert f"Why {row['chosen']} falls short" in shown and "[1]" in shown
    assert any(e.label.startswith("[1] ") for e in at.expander)


def test_explain_without_options_is_a_friendly_error(corpus_env):
    at = page_app("explain").run()
    at.text_area(key="ex_question").set_value("Which storage class is cheapest?").run()
    at.button(key="ex_go").click().run()
    assert not at.exception
    assert at.error and "option" in at.error[0].value.lower()


def test_notes_page_shows_index_status(corpus_env):
    at = page_app("notes").run()
    no_errors(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Files"] == "5"
    assert int(metrics["Chunks"]) > 100


def test_notes_upload_indexes_good_file_and_reports_bad_one(monkeypatch, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "vpc.md").write_text("# VPC\n\nA VPC is a private network in one AWS region; "
                                  "subnets live in one availability zone each.\n")
    monkeypatch.setenv("STUDYRAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STUDYRAG_STORAGE__NOTES_DIR", str(notes))
    monkeypatch.setenv("STUDYRAG_ANSWER__BACKEND", "extractive")
    at = page_app("notes").run()  # first load of a fresh home builds the index
    no_errors(at)
    assert any("Ready" in s.value for s in at.success)
    at.file_uploader(key="upload_files").set_value([
        ("kinesis.md", b"# Kinesis\n\nKinesis Data Streams ingest real-time data.\n",
         "text/markdown"),
        ("broken.md", b"\x00\x01\x02binary\x00junk" * 20, "text/markdown"),
        ("empty.txt", b"   \n", "text/plain"),
    ])
    at.button[0].click().run()  # the form's submit button
    no_errors(at)
    warning = "\n".join(w.value for w in at.warning)
    assert "broken.md" in warning and "binary" in warning
    assert "empty.txt" in warning and "empty" in warning
    assert any("Indexed" in s.value for s in at.success)
    uploads = tmp_path / "home" / "uploads"
    assert (uploads / "kinesis.md").is_file()
    assert not (uploads / "broken.md").exists()  # bad uploads are not kept
    from rag.config import load_settings
    from rag.index import NoteIndex

    files = NoteIndex(load_settings()).status()["files"]
    assert "kinesis.md" in files and "broken.md" not in files


def test_quality_page_shows_latest_report(corpus_env, tmp_path, monkeypatch):
    from rag.ui import quality

    report = {"command": "study eval --quick", "items": 3,
              "retrieval": {"bm25": {"recall@1": 0.5, "recall@5": 0.8, "recall@10": 0.9,
                                     "p50_ms": 10.0},
                            "hybrid": {"recall@1": 0.6, "recall@5": 0.9, "recall@10": 1.0,
                                       "p50_ms": 20.0}},
              "answers": {"extractive": {"must_correct": 0.6, "faithfulness": 0.95,
                                         "latency_p50_ms": 800.0, "latency_p95_ms": 2000.0}}}
    (tmp_path / "2026-01-01-dev.json").write_text(json.dumps(report))
    (tmp_path / "2026-01-01-dev.md").write_text("# Eval: dev\n")
    # A later-written subset run of the same day does not hide the full run; an older day
    # comes last.
    (tmp_path / "2026-01-01-dev-every4.json").write_text(json.dumps({**report, "items": 1}))
    (tmp_path / "2025-12-31-dev.json").write_text(json.dumps(report))
    assert quality.eval_reports(tmp_path) == [tmp_path / "2026-01-01-dev.json",
                                              tmp_path / "2026-01-01-dev-every4.json",
                                              tmp_path / "2025-12-31-dev.json"]
    monkeypatch.setattr(quality, "REPORTS", tmp_path)
    at = page_app("quality")
    at.run()
    no_errors(at)
    assert len(at.dataframe) == 2
    assert any("2026-01-01-dev.json" in c.value for c in at.caption)
    charts = at.get("vega_lite_chart")
    assert len(charts) >= 3  # recall@k, latency, faithfulness plots
    command = quality.quick_eval_command(corpus_env)
    assert command[-3:] == ["--quick", "--name", "app-quick"]
    assert str(corpus_env.home) in command  # the bundled corpus reuses the app's index


def test_sessions_do_not_share_chat(corpus_env):
    one = whole_app().run()
    two = whole_app().run()
    one.chat_input[0].set_value("What is a cluster placement group?").run()
    two.run()
    assert len(one.session_state["chat"]) == 2
    assert "chat" not in two.session_state or not two.session_state["chat"]


def test_practice_says_when_the_notes_give_fewer_questions_than_asked(corpus_env, tmp_path,
                                                                       monkeypatch):
    from rag.progress import Progress
    from rag.ui import resources

    monkeypatch.setattr(resources, "get_progress",
                        lambda settings: Progress(tmp_path / "progress.sqlite3"))
    at = page_app("practice").run()
    topics = at.multiselect(key="pr_topics").options
    at.multiselect(key="pr_topics").set_value([topics[1]])
    at.slider(key="pr_n").set_value(10)
    at.button[0].click().run()
    no_errors(at)
    got = len(at.session_state["pr_round"]["questions"])
    assert 0 < got < 10
    assert any(f"your notes gave {got} question" in c.value for c in at.caption)


def test_practice_round_is_graded_and_recorded(corpus_env, tmp_path, monkeypatch):
    from rag.progress import Progress
    from rag.ui import resources

    store = Progress(tmp_path / "progress.sqlite3")  # keep the shared home's history clean
    monkeypatch.setattr(resources, "get_progress", lambda settings: store)
    at = page_app("practice").run()
    no_errors(at)
    topics = at.multiselect(key="pr_topics").options
    assert "My weak topics" in topics and len(topics) > 3
    # several topics: one topic's notes may hold a single question worth asking
    at.multiselect(key="pr_topics").set_value(topics[1:4])
    at.slider(key="pr_n").set_value(2)
    at.button[0].click().run()  # "Start practice" (the form's submit button)
    no_errors(at)
    r = at.session_state["pr_round"]
    assert len(r["questions"]) == 2
    q = r["questions"][0]
    wrong = (q.answer_index + 1) % len(q.options)  # four options, or true-false
    at.radio(key="pr_choice_0").set_value(wrong).run()
    at.button(key="pr_submit_0").click().run()
    no_errors(at)
    assert any("Not quite" in w.value for w in at.warning)
    assert any(e.label == "From your notes" for e in at.expander)
    assert at.metric[0].value == "0/1"
    at.button(key="pr_next_0").click().run()
    at.radio(key="pr_choice_1").set_value(at.session_state["pr_round"]["questions"][1]
                                          .answer_index).run()
    at.button(key="pr_submit_1").click().run()
    assert any("Correct" in s.value for s in at.success)
    at.button(key="pr_next_1").click().run()
    no_errors(at)
    assert at.subheader[0].value == "Round finished: 1 of 2 correct"
    # The miss was recorded: it is due for review and offered on the Explain page.
    assert q.id in {c.question_id for c in store.due()}
    assert at.session_state["pr_missed"][0]["question"] == q.stem


def test_quiz_me_on_this_opens_practice_on_the_topic(corpus_env):
    at = whole_app().run()
    at.chat_input[0].set_value("What is a cluster placement group?").run()
    at.button(key="quiz_1").click().run()
    no_errors(at)
    assert at.title[0].value == "Practice"
    assert at.text_input(key="pr_custom").value == "Cluster"


def test_sidebar_shows_unavailable_backend_clearly(corpus_env, monkeypatch):
    monkeypatch.setenv("STUDYRAG_ANSWER__OLLAMA_HOST", "http://127.0.0.1:9")  # nobody listens
    at = whole_app().run()
    at.toggle(key="sb_extractive").set_value(False).run()
    at.selectbox(key="sb_backend").set_value("ollama").run()
    no_errors(at)
    warning = " ".join(w.value for w in at.sidebar.warning)
    assert "ollama" in warning and "unavailable" in warning
    assert at.text_input(key="sb_ollama_host").value == "http://127.0.0.1:9"
