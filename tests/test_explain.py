"""Wrong-answer explanations on the real notes (rules, and a configured generator)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from openai_stub import OpenAIStub  # noqa: E402

from rag.errors import InputError  # noqa: E402
from rag.evidence import YOUR_CHOICE  # noqa: E402
from rag.explain import Explainer, parse_options  # noqa: E402

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
DAX = ("A serverless application on AWS Lambda reads the same hot items from a DynamoDB table "
       "again and again. The team wants those hot keys cached but cannot refactor the "
       "application's logic. What should they add?\n"
       "A. Amazon ElastiCache for Redis.\n"
       "B. DynamoDB Accelerator (DAX).\n"
       "C. CloudFront in front of DynamoDB.\n"
       "D. An RDS read replica.")
# The notes hold a write-up of this very question that starts "Your confusion ..." and has an
# "Analyzing Your Chosen Solution" section: none of it may be shown as reasoning.
VIDEO = ("A company's serverless video pipeline on AWS Lambda times out because encoding takes "
         "longer than Lambda allows. The team must not manage servers. What should they do?\n"
         "A. Use AWS Step Functions and an EC2 Auto Scaling group to run the encoding.\n"
         "B. Increase the Lambda timeout to two hours.\n"
         "C. Containerize the encoder and run it as an ECS task on Fargate, started by a "
         "Lambda function on each S3 upload.\n"
         "D. Run the encoder on a single EC2 instance with a cron job.")


# The scenario needs more than the chosen option's stated limit allows.
ENCRYPT = ("A healthcare company must encrypt medical images of 2 to 10 MB each with keys "
           "managed in AWS KMS before storing them. Which approach should the solutions "
           "architect recommend?\n"
           "A. Call the KMS Encrypt API on each image with a customer managed key.\n"
           "B. Call GenerateDataKey, encrypt each image locally with the returned data key, "
           "and store the encrypted data key alongside it.\n"
           "C. Enable SSL on the upload endpoint.\n"
           "D. Store the images in CloudHSM.")
TRANSCODE = ("A company runs a nightly video transcoding job that takes about two hours per file. "
             "The team does not want to manage servers. Which compute option should they use?\n"
             "A. An EC2 On-Demand instance that the team patches.\n"
             "B. An AWS Lambda function triggered by an S3 event.\n"
             "C. A container task on Amazon ECS with the Fargate launch type.\n"
             "D. Amazon Athena.")


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


def _cited_numbers(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"\[(\d+)\]", text)}


def test_with_the_key_the_reason_for_the_chosen_option_is_the_limit_in_the_notes(explainer):
    e = explainer.explain(ECS, "A", "C")
    assert e.correct == "C" and e.correct_given and e.settled and not e.abstained
    fails = e.sections.chosen_fails
    assert fails and fails[0].citation and "Docker Swarm" in fails[0].quote
    assert "Docker Swarm" in e.explanation and "Parameter Store" in e.explanation
    fits = e.sections.correct_fits
    assert fits and fits[0].citation and "Parameter Store" in fits[0].quote
    labels = {ev.letter: ev.label for ev in e.evidence}
    assert labels["A"] == "contradicts" and "backs" not in (labels["B"], labels["D"])
    numbers = {c.n for c in e.citations}
    assert numbers == set(range(1, len(e.citations) + 1)) == _cited_numbers(e.explanation)
    for reason in fails + fits + e.sections.key_points:  # each quote is in its cited passage
        passage = next(c.passage for c in e.citations if c.n == reason.citation)
        assert reason.quote.split(": ")[-1][:40] in " ".join(passage.text.split())


def test_without_the_key_it_settles_only_when_right_or_says_the_notes_dont_decide(explainer):
    e = explainer.explain(DAX, "A")
    assert e.settled and e.correct == "B" and not e.correct_given  # never the read replica
    labels = {ev.letter: ev.label for ev in e.evidence}
    assert labels["B"] == "backs" and labels["A"] == "contradicts"
    assert "refactor" in next(ev.quote for ev in e.evidence if ev.letter == "A")
    open_question = explainer.explain(ECS, "A")
    assert open_question.correct in (None, "C")
    if open_question.correct is None:
        assert not open_question.settled and "don't decide" in open_question.sections.verdict
        assert all(ev.label != "backs" or ev.letter == "C" for ev in open_question.evidence)


def test_write_ups_of_a_choice_are_never_shown_as_reasoning(explainer):
    e = explainer.explain(VIDEO, "A", "C")
    shown = [r.text for r in e.sections.chosen_fails + e.sections.correct_fits
             + e.sections.key_points] + [ev.quote for ev in e.evidence]
    assert e.citations and not any(YOUR_CHOICE.search(text) for text in shown)
    assert not YOUR_CHOICE.search(e.explanation)


def test_off_topic_question_is_not_guessed(explainer):
    q = ("Which pastry is traditionally eaten in Portugal at breakfast?\n"
         "A. Pastel de nata\nB. Croissant\nC. Baklava\nD. Churro")
    e = explainer.explain(q, "B")
    assert e.abstained and not e.settled and e.correct is None


def test_bad_input_is_one_input_error(explainer):
    with pytest.raises(InputError, match="not one of"):
        explainer.explain(ECS, "F")
    with pytest.raises(InputError, match="options"):
        explainer.explain("What is S3?", "A")
    with pytest.raises(InputError, match="empty"):
        explainer.explain("   ", "A")


def _openai_explainer(corpus_settings, search, stub) -> Explainer:
    from rag.chains import Tutor

    settings = corpus_settings.updated(answer={
        "backend": "openai", "openai_base_url": stub.base_url, "model": stub.models[0],
        "timeout_s": 5.0})
    return Explainer(Tutor(settings, search))


def test_a_generator_writes_the_prose_only_when_every_sentence_is_supported(
        corpus_settings, search):
    with OpenAIStub(reply="x") as stub:  # first learn which line [1] is
        rules = _openai_explainer(corpus_settings, search, stub).explain(DAX, "A", "B")
    assert rules.backend == "extractive"  # "x" cites nothing: the rules' text stays
    quote = rules.sections.chosen_fails[0].quote
    good = f"{quote.rstrip('.')} [{rules.sections.chosen_fails[0].citation}]."
    with OpenAIStub(reply=good) as stub:
        written = _openai_explainer(corpus_settings, search, stub).explain(DAX, "A", "B")
        prompt = stub.requests[-1]["messages"][-1]["content"]
    assert written.backend == "generated" and written.explanation.startswith(quote[:30])
    assert "refactor" in prompt and written.sections == rules.sections
    bad = f"{good} RDS read replicas cache hot keys for free [1]."
    with OpenAIStub(reply=bad) as stub:
        kept = _openai_explainer(corpus_settings, search, stub).explain(DAX, "A", "B")
    assert kept.backend == "extractive" and "for free" not in kept.explanation
    with OpenAIStub(status=500) as stub:
        down = _openai_explainer(corpus_settings, search, stub).explain(DAX, "A", "B")
    assert down.backend == "extractive" and down.explanation == rules.explanation


def test_cli_explain_batch_schema(corpus_settings, tmp_path, capsys):
    from rag.cli import main

    batch = tmp_path / "in.jsonl"
    batch.write_text("\n".join([
        json.dumps({"id": "e1", "question": ECS, "chosen": "A", "correct": "C"}),
        json.dumps({"id": "bad", "question": ECS}),
        json.dumps({"id": "z", "question": ECS, "chosen": "Z"}),
    ]), encoding="utf-8")
    code = main(["--home", str(corpus_settings.home), "explain", "--batch", str(batch),
                 "--json"])
    assert code == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["id"] == "e1" and rows[0]["correct"] == "C"
    assert set(rows[0]) >= {"id", "explanation", "correct", "citations", "abstained", "sections"}
    assert set(rows[0]["citations"][0]) == {"n", "passage"}
    assert rows[0]["sections"]["chosen_fails"][0]["citation"] == 1
    assert rows[1]["id"] == "bad" and "error" in rows[1]
    assert "not one of" in rows[2]["error"]


def test_cli_explain_errors_are_one_line(corpus_settings, capsys):
    from rag.cli import main

    code = main(["--home", str(corpus_settings.home), "explain", "--question", ECS,
                 "--chosen", "Z"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err


@pytest.mark.parametrize("sentence, pos_has, neg_has", [
    # a negated drawback is a benefit
    ("DAX will be transparent and won't require an application refactoring", "dax", ""),
    # a drawback word rules out what the part describes
    ("Provisioned IOPS (io1) has the highest IOPS performance, but also the most expensive",
     "", "iop"),
    # a relative clause that objects rules out its antecedent
    ("This approach involves managing EC2 instances, which contradicts the requirement of "
     "avoiding infrastructure management", "", "ec2"),
    # a comparison in favour of what follows is no objection to it
    ("EBS volumes would provide good performance as far as disk goes, but not as good as "
     "Instance Store", "instance", ""),
    # the remedy after a drawback is positive
    ("This entails a lot of overhead which can be simplified by simply using the Parameter "
     "Store", "parameter", "overhead"),
])
def test_clause_polarity(sentence, pos_has, neg_has):
    from rag.evidence import _split_polarity
    from rag.text import stem

    pos, neg = _split_polarity(sentence, 0)  # stems on each side
    if pos_has:
        assert stem(pos_has) in pos and stem(pos_has) not in neg
    if neg_has:
        assert stem(neg_has) in neg and stem(neg_has) not in pos


@pytest.mark.parametrize("question, chosen, correct, reason", [
    ("A media website wants its static images cached at edge locations close to users. Which "
     "service should it use?\nA. Amazon CloudFront.\nB. AWS Direct Connect.\nC. A NAT gateway."
     "\nD. AWS Global Accelerator.", "D", "A", "doesn't cache"),
    ("Database credentials for an RDS instance must be rotated automatically every 30 days "
     "without custom scheduling code. Which service should store them?\nA. EC2 user data.\n"
     "B. SSM Parameter Store standard parameters.\nC. AWS Secrets Manager.\n"
     "D. An encrypted S3 object.", "B", "C", "cannot rotate"),
])
def test_the_reason_the_chosen_option_fails_is_a_line_whose_subject_is_that_option(
        explainer, question, chosen, correct, reason):
    """A short limit line about the option itself ("Global Accelerator doesn't cache") is the
    reason, even when it resembles the scenario less than lines about its neighbours."""
    e = explainer.explain(question, chosen, correct)
    fails = e.sections.chosen_fails
    assert fails[0].citation and reason in fails[0].quote
    assert {ev.letter: ev.label for ev in e.evidence}[chosen] == "contradicts"


def test_a_limit_of_a_neighbouring_thing_is_no_reason_against_the_option(explainer):
    """"NAT Instances would work but won't scale" is about NAT instances, not the NAT gateway
    the student chose."""
    e = explainer.explain(
        "Instances in a private subnet must download objects from S3 without their traffic "
        "leaving the AWS network. What should the architect add?\nA. A gateway VPC endpoint "
        "for S3 with a route table prefix list entry.\nB. An internet gateway route in the "
        "private subnet.\nC. A Direct Connect connection.\nD. A NAT gateway in a public subnet.",
        "D", "A")
    shown = [r.quote for r in e.sections.chosen_fails] + [
        ev.quote for ev in e.evidence if ev.letter == "D"]
    assert not any("NAT Instances" in q for q in shown)


@pytest.mark.parametrize("question, chosen, correct, needed, bound", [
    (ENCRYPT, "A", "B", "10 MB", "4KB"), (TRANSCODE, "B", "C", "two hours", "15 minute")])
def test_the_reason_the_chosen_option_fails_is_the_limit_the_scenario_breaks(
        explainer, question, chosen, correct, needed, bound):
    """The notes' bound on the chosen option, compared with what the scenario needs (in one
    unit: 10 MB > 4 KB, two hours > 15 minutes), cited: the reason a tutor would give."""
    e = explainer.explain(question, chosen, correct)
    fails = e.sections.chosen_fails[0]
    assert fails.citation and bound in fails.quote
    assert f"needs {needed}" in fails.text and "limit of" in fails.text
    assert next(ev for ev in e.evidence if ev.letter == chosen).label == "contradicts"
