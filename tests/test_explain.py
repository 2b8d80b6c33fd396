"""Wrong-answer explanations on the real notes (extractive mode)."""

from __future__ import annotations

import json

import pytest

from rag.errors import InputError
from rag.explain import Explainer, parse_options

ECS = ("A media company runs its news website on an Amazon ECS cluster with the Fargate launch "
       "type. Database credentials must be supplied to the containers as environment variables "
       "and must not be viewable in plaintext on the cluster. What should the solutions "
       "architect do?\n"
       "A. Use Docker Secrets to store the credentials and mount them into the containers.\n"
       "B. Store the credentials in Secrets Manager and attach a resource-based policy to the "
       "ECS cluster.\n"
       "C. Store the credentials in SSM Parameter Store encrypted with KMS, grant the task "
       "execution role access, and reference them with the secrets parameter.\n"
       "D. Store the credentials in an encrypted S3 bucket and download them when each "
       "container starts.")


@pytest.fixture(scope="module")
def explainer(tutor):
    return Explainer(tutor)


@pytest.mark.parametrize("text", [
    "Which one?\nA. first\nB. second\nC. third",
    "Which one?\nA) first\nB) second\nC) third",
    "Which one?\n(A) first\n(B) second\n(C) third",
    "Which one? A) first B) second C) third",
])
def test_parse_options_formats(text):
    stem, options = parse_options(text)
    assert stem == "Which one?"
    assert options == {"A": "first", "B": "second", "C": "third"}


def test_parse_options_without_options_keeps_the_text():
    assert parse_options("What is S3?") == ("What is S3?", {})


def test_explains_with_the_correct_option_given(explainer):
    e = explainer.explain(ECS, "A", "C")
    assert e.correct == "C" and e.correct_given and e.settled and not e.abstained
    text = e.explanation
    for fact in ("Docker Swarm", "Parameter Store", "KMS"):
        assert fact in text
    for title in ("What the scenario asks", "Why A falls short", "Why C fits",
                  "Key points to remember"):
        assert title in text
    assert e.sections.key_requirement and e.sections.why_chosen_falls_short
    assert 2 <= len(e.sections.key_points) <= 4
    numbers = {c.n for c in e.citations}
    assert numbers == set(range(1, len(e.citations) + 1))
    cited = {int(n) for n in __import__("re").findall(r"\[(\d+)\]", text)}
    assert cited == numbers
    assert any(c.passage.file == "exam-scenarios.md" for c in e.citations)


def test_decides_the_correct_option_from_the_notes(explainer):
    e = explainer.explain(ECS, "A")
    assert e.correct == "C" and e.settled and not e.correct_given
    assert e.confidence in ("high", "medium")
    assert f"decided from your notes, {e.confidence} confidence" in e.explanation
    by_letter = {ev.letter: ev for ev in e.evidence}
    assert "Docker Swarm" in by_letter["A"].ruled_out_by


def test_off_topic_question_is_not_guessed(explainer):
    q = ("Which pastry is traditionally eaten in Portugal at breakfast?\n"
         "A. Pastel de nata\nB. Croissant\nC. Baklava\nD. Churro")
    e = explainer.explain(q, "B")
    assert e.abstained or not e.settled
    assert e.correct is None


def test_bad_letters_are_input_errors(explainer):
    with pytest.raises(InputError):
        explainer.explain(ECS, "F")
    with pytest.raises(InputError):
        explainer.explain("What is S3?", "A")


def test_cli_explain_batch_schema(corpus_settings, tmp_path, capsys):
    from rag.cli import main

    batch = tmp_path / "in.jsonl"
    batch.write_text("\n".join([
        json.dumps({"id": "e1", "question": ECS, "chosen": "A", "correct": "C"}),
        json.dumps({"id": "bad", "question": ECS}),
    ]), encoding="utf-8")
    code = main(["--home", str(corpus_settings.home), "explain", "--batch", str(batch),
                 "--json"])
    assert code == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["id"] == "e1" and rows[0]["correct"] == "C"
    assert set(rows[0]) >= {"id", "explanation", "correct", "citations", "abstained"}
    assert set(rows[0]["citations"][0]) == {"n", "passage"}
    assert rows[1]["id"] == "bad" and "error" in rows[1]


def test_cli_explain_errors_are_one_line(corpus_settings, capsys):
    from rag.cli import main

    code = main(["--home", str(corpus_settings.home), "explain", "--question", ECS,
                 "--chosen", "Z"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err


DAX = ("A serverless application on AWS Lambda reads the same hot items from a DynamoDB table "
       "again and again. The team wants those hot keys cached but cannot refactor the "
       "application's logic. What should they add?\n"
       "A. Amazon ElastiCache for Redis.\n"
       "B. DynamoDB Accelerator (DAX).\n"
       "C. CloudFront in front of DynamoDB.\n"
       "D. An RDS read replica.")


def test_negated_drawback_supports_and_a_general_fact_does_not_win(explainer):
    """Regression: "DAX ... won't require an application refactoring" used to count as ruling
    DAX *out* (it contains "won't"), and "RDS Read Replicas for read scalability" won."""
    e = explainer.explain(DAX, "A")
    assert e.correct == "B" or not e.settled  # never the read replica (was: D, high)
    by_letter = {ev.letter: ev for ev in e.evidence}
    assert "refactor" in by_letter["A"].ruled_out_by
    assert "won't require" not in by_letter["B"].ruled_out_by


@pytest.mark.parametrize("sentence, pos_has, neg_has", [
    # a negated drawback is a benefit
    ("DAX will be transparent and won't require an application refactoring", "dax", ""),
    # a drawback word rules out what the part describes
    ("Provisioned IOPS (io1) has the highest IOPS performance, but also the most expensive",
     "", "iop"),
    # a relative clause that objects rules out its antecedent
    ("This approach involves managing EC2 instances, which contradicts the requirement of "
     "avoiding infrastructure management", "", "ec2"),
    # the remedy after a drawback is positive
    ("This entails a lot of overhead which can be simplified by simply using the Parameter "
     "Store", "parameter", "overhead"),
])
def test_clause_polarity(sentence, pos_has, neg_has):
    from rag.evidence import _split_polarity

    pos, neg = _split_polarity(sentence, 0)
    if pos_has:
        assert pos_has in pos and pos_has not in neg
    if neg_has:
        assert neg_has in neg and neg_has not in pos
