"""Practice questions on the real notes: harvesting, validation, topics, CLI JSON, grading."""

from __future__ import annotations

import io
import json

import pytest

from rag.models import Passage
from rag.quiz import (BLANK, Question, QuizError, QuizMaker, Validator, grade, list_topics,
                      topic_chunks)


@pytest.fixture(scope="module")
def maker(tutor):
    return QuizMaker(tutor, seed=3)


def _q(stem, options, answer, text, **kw) -> Question:
    passage = Passage(file="notes.md", heading="Storage", start_line=1,
                      end_line=text.count("\n") + 1, text=text)
    return Question(id=kw.get("id", "t1"), topic="Storage", stem=stem, options=options,
                    answer_index=answer, explanation="From the notes.", passage=passage,
                    source=kw.get("source", "cloze"))


def test_harvests_the_notes_own_qa_and_scenarios(maker):
    harvested = maker.bank.harvested()
    qa = [q for q in harvested if "Q&A" in q.stem]
    ec2 = next(q for q in qa if "Glue is for performing ETL" in q.stem)
    assert ec2.answer == "EC2" and "Lambda" in ec2.options
    assert ec2.passage.file == "aws-certification-notes.md"
    ecs = next(q for q in harvested if q.topic == "ECS Cluster")
    assert "Parameter Store" in ecs.answer and ecs.passage.file == "exam-scenarios.md"
    checker = Validator(maker.index.embedder)
    assert all(checker.validate(q) == [] for q in (ec2, ecs))


def test_validation_rejects_two_supported_options(maker):
    text = ("- Amazon EFS provides a shared POSIX file system for many instances.\n"
            "- Amazon FSx provides a shared POSIX file system for many instances.")
    q = _q(f"Which service fits? {BLANK} provides a shared POSIX file system for many "
           "instances.", ["EFS", "FSx", "EBS", "Glacier"], 0, text)
    problems = Validator(maker.index.embedder).validate(q)
    assert any("also supported" in p and "FSx" in p for p in problems)


def test_validation_rejects_an_unsupported_answer(maker):
    text = "- Amazon EFS provides a shared POSIX file system for many instances."
    q = _q(f"Which service fits? {BLANK} provides a shared POSIX file system for many "
           "instances.", ["EBS", "EFS", "S3", "Glacier"], 0, text)
    problems = Validator(maker.index.embedder).validate(q)
    assert any(p.startswith("answer not supported") for p in problems)
    assert any("'EFS' is also supported" in p for p in problems)


def test_validation_rejects_duplicates_and_repeated_options(maker):
    text = "- Amazon EFS provides a shared POSIX file system for many instances."
    good = _q(f"Which service fits? {BLANK} provides a shared POSIX file system for many "
              "instances.", ["EFS", "EBS", "S3", "Glacier"], 0, text)
    checker = Validator(maker.index.embedder)
    assert checker.validate(good) == []
    again = good.model_copy(update={"id": "t2", "stem": good.stem.replace("many", "several")})
    assert "near-duplicate of an earlier question" in checker.validate(again)
    same = good.model_copy(update={"id": "t3", "options": ["EFS", "EBS", "ebs", "S3"]})
    assert "options are not distinct" in Validator(maker.index.embedder).validate(same)


def test_negated_distractor_in_the_passage_is_not_support(maker):
    text = ("- Glue is for performing ETL, but cannot run custom Python scripts.\n"
            "- Here, the best fit is EC2 for a custom Python batch script.")
    q = _q(f"Which service fits? Here, the best fit is {BLANK} for a custom Python batch "
           "script.", ["Glue", "EC2", "Kinesis", "SNS"], 1, text)
    assert Validator(maker.index.embedder).validate(q) == []


def test_topics_come_from_headings(corpus_index):
    names = [t.name for t in list_topics(corpus_index)]
    assert len(names) >= 10
    assert "Simple Storage Service (S3)" in names and "Q&A" not in names
    assert topic_chunks(corpus_index, "S3")
    assert not any(n.startswith(("Understanding", "Analyzing", "Key Points")) for n in names)


def test_make_returns_valid_grounded_questions(maker):
    questions = maker.make("S3", 3)
    assert len(questions) == 3
    assert len({q.id for q in questions}) == 3
    for q in questions:
        assert len(q.options) == 4 and len({o.lower() for o in q.options}) == 4
        assert q.passage.text and q.passage.start_line <= q.passage.end_line
        assert q.answer.lower().split()[0] in q.passage.text.lower() or q.source == "harvested"
    assert maker.stats.valid >= 3 and 0 < maker.stats.validity_rate <= 1


def test_unknown_topic_is_a_clear_error(maker):
    with pytest.raises(QuizError, match="study topics"):
        maker.make("Quantum Basket Weaving", 2)


def test_grade_gives_feedback_with_citation(maker):
    q = maker.make("EC2", 1)[0]
    ok, text = grade(q, q.answer_index)
    assert ok and text.startswith("Correct!") and q.passage.file in text
    ok, text = grade(q, (q.answer_index + 1) % 4)
    assert not ok and f"the answer is {q.letter})" in text


def test_cli_quiz_json_schema(corpus_settings, capsys):
    from rag.cli import main

    code = main(["--home", str(corpus_settings.home), "quiz", "--topic", "S3", "--n", "2",
                 "--json", "--seed", "1"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"topic", "questions", "validity_rate", "candidates", "rejected"}
    assert len(out["questions"]) == 2
    for q in out["questions"]:
        assert set(q) == {"id", "topic", "stem", "options", "answer_index", "explanation",
                          "passage", "source"}
        assert set(q["passage"]) == {"file", "heading", "start_line", "end_line", "text",
                                     "score"}


def test_cli_interactive_quiz_records_progress_and_handles_eof(corpus_settings, tmp_path,
                                                                capsys, monkeypatch):
    from rag.cli import main
    from rag.progress import Progress

    home = corpus_settings.home
    db = Progress(corpus_settings.progress_db)
    before = db.attempts()
    monkeypatch.setattr("sys.stdin", io.StringIO("x\nA\n"))  # one bad reply, one answer, EOF
    code = main(["--home", str(home), "quiz", "--topic", "EC2", "--n", "2", "--seed", "2",
                 "--new-only"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Please type A, B, C or D" in out and "answers so far are saved" in out
    assert db.attempts() == before + 1
    code = main(["--home", str(home), "progress", "--json"])
    topics = json.loads(capsys.readouterr().out)["topics"]
    assert code == 0 and sum(t["attempts"] for t in topics) == before + 1


def test_cli_review_asks_only_due_questions_with_self_rating(maker, tmp_path, capsys,
                                                            monkeypatch):
    from rag.cli import main
    from rag.progress import Progress

    home = tmp_path / "review-home"  # --review needs the progress database, not the index
    db = Progress(home / "progress.sqlite3")
    missed, known = maker.make("EC2", 2)
    db.record(missed.id, missed.topic, (missed.answer_index + 1) % 4, missed.answer_index,
              question_json=missed.model_dump_json())
    db.record(known.id, known.topic, known.answer_index, known.answer_index,
              question_json=known.model_dump_json())
    assert main(["--home", str(home), "quiz", "--review", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["due"] == 1 and [q["id"] for q in out["questions"]] == [missed.id]

    monkeypatch.setattr("sys.stdin", io.StringIO(f"{missed.letter}\nmaybe\ne\n"))
    assert main(["--home", str(home), "quiz", "--review"]) == 0
    out = capsys.readouterr().out
    assert "1 of 1 due for review today" in out and "Correct!" in out
    assert "Please press Enter" in out and "Next review in " in out
    card = db.card(missed.id)
    assert card.last_rating == 4 and not card.missed  # rated Easy by the student
    assert db.attempts() == 3
    assert main(["--home", str(home), "quiz", "--review"]) == 0
    assert "Nothing is due for review today; the next review is in " in \
        capsys.readouterr().out
    assert main(["--home", str(home), "progress"]) == 0
    assert "due today" in capsys.readouterr().out
    assert main(["--home", str(home), "quiz", "--review", "--new-only"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
