"""Choose the sources: every feature cites only the chosen files or folders."""

from __future__ import annotations

import json

import pytest

from rag.errors import InputError
from rag.sources import SourceScope, from_sources, matches, resolve

Q = "What is the maximum execution time of a Lambda function?"
ONE = "exam-scenarios.md"


def test_matching_rules():
    assert matches("slides/week1.pdf", "slides")
    assert matches("slides/week1.pdf", "slides/week1.pdf")
    assert matches("slides/week1.pdf", "week1.pdf")  # a bare name: in any folder
    assert not matches("slides2/a.pdf", "slides")
    assert not matches("slides/week1.pdf", "other/week1.pdf")
    files = ["a.md", "slides/w1.pdf", "slides/w2.pptx"]
    assert resolve(files, ["./slides/"]) == {"slides/w1.pdf", "slides/w2.pptx"}
    assert resolve(files, ["a.md", "w1.pdf"]) == {"a.md", "slides/w1.pdf"}
    with pytest.raises(InputError, match="'nope.md' is no indexed file or folder.*a.md"):
        resolve(files, ["nope.md"])
    assert from_sources("slides/w1.pdf", None) and from_sources("x.md", [])
    assert not from_sources("x.md", ["slides"])


def test_hits_filter_every_list_before_fusion(search):
    everywhere = search.hits(Q, k=10)
    assert {h.chunk.file for h in everywhere} - {ONE}, "the filter must have work to do"
    only = search.hits(Q, k=5, sources=[ONE])
    assert len(only) == 5 and {h.chunk.file for h in only} == {ONE}
    for mode in ("dense", "bm25"):
        assert {h.chunk.file for h in search.hits(Q, k=5, mode=mode, sources=[ONE])} == {ONE}
    with pytest.raises(InputError, match="no indexed file"):
        search.hits(Q, sources=["missing.md"])


def test_sources_setting_scopes_answers_and_quiz(corpus_settings, corpus_index):
    from rag.chains import Tutor
    from rag.quiz import QuizMaker
    from rag.retrieval import HybridSearch

    settings = corpus_settings.updated(storage={"sources": [ONE]})
    search = HybridSearch(settings, corpus_index)
    assert isinstance(search.index, SourceScope)
    assert {c.file for c in search.index.chunks().values()} == {ONE}
    tutor = Tutor(settings, search)
    answer = tutor.ask("Which service fits a media company that needs a cluster?")
    assert answer.citations and {c.passage.file for c in answer.citations} == {ONE}
    questions = QuizMaker(tutor, seed=1).make(None, 3)
    assert questions and {q.passage.file for q in questions} == {ONE}


def _cli(corpus_settings, *argv):
    import subprocess
    import sys

    from conftest import REPO

    env = {"STUDYRAG_HOME": str(corpus_settings.home),
           "STUDYRAG_STORAGE__NOTES_DIR": str(corpus_settings.storage.notes_dir),
           "STUDYRAG_STORAGE__MODEL_CACHE_DIR": str(corpus_settings.cache_dir),
           "STUDYRAG_ANSWER__BACKEND": "extractive", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "rag.cli", *argv], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=300)


@pytest.mark.slow  # five CLI processes, each loading the embedder
def test_cli_ask_quiz_guide_take_source(corpus_settings):
    other = "aws-certification-notes.md"
    out = _cli(corpus_settings, "ask", Q, "--json", "--source", ONE, "--source", other)
    assert out.returncode == 0, out.stderr
    cited = {c["passage"]["file"] for c in json.loads(out.stdout)["citations"]}
    assert cited and cited <= {ONE, other}
    out = _cli(corpus_settings, "quiz", "--json", "--n", "2", "--source", ONE)
    assert out.returncode == 0, out.stderr
    assert {q["passage"]["file"] for q in json.loads(out.stdout)["questions"]} == {ONE}
    out = _cli(corpus_settings, "guide", "Lambda", "--json", "--source", other)
    assert out.returncode == 0, out.stderr
    files = {i["passage"]["file"] for s in json.loads(out.stdout)["sections"]
             for i in s["items"]}
    assert files == {other}
    out = _cli(corpus_settings, "ask", Q, "--source", "nope.md")
    assert out.returncode == 2
    assert out.stderr.startswith("error: Source 'nope.md' is no indexed file")
    assert len(out.stderr.strip().splitlines()) == 1


def _practised(path):
    """A progress database with one missed question from each of two files."""
    from rag.models import Passage
    from rag.progress import Progress
    from rag.quiz import Question

    progress = Progress(path)
    for i, file in enumerate(["slides/w1.pdf", "notes/s3.md"]):
        q = Question(id=f"q{i}", topic="S3", stem=f"Stem {i}?", options=["a", "b", "c", "d"],
                     answer_index=0, explanation="x", source="generated",
                     passage=Passage(file=file, heading="", start_line=1, end_line=1, text="t"))
        progress.record(q.id, q.topic, 1, 0, question_json=q.model_dump_json())  # wrong: due
    return progress


def test_review_keeps_only_due_questions_from_the_sources(tmp_path):
    from rag.cli_study import _due_questions

    progress = _practised(tmp_path / "progress.sqlite3")
    assert {q.id for q in _due_questions(progress, None)} == {"q0", "q1"}
    assert [q.id for q in _due_questions(progress, None, ["slides"])] == ["q0"]
    assert [q.id for q in _due_questions(progress, "s3", ["s3.md"])] == ["q1"]


def test_export_takes_source(tmp_path):
    import csv

    from rag.cli import main

    _practised(tmp_path / "home" / "progress.sqlite3")
    out = tmp_path / "cards.csv"
    assert main(["--home", str(tmp_path / "home"), "export", "csv", "--out", str(out),
                 "--source", "slides"]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["file"] for r in rows] == ["slides/w1.pdf"]
