"""Practice questions on the real notes: topic phrases, kinds, validation, vocabulary, CLI."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from rag.models import Chunk, Passage
from rag.quiz import (Question, QuizError, QuizMaker, Validator, Vocabulary, grade,
                      list_topics)


@pytest.fixture(scope="module")
def maker(tutor):
    return QuizMaker(tutor, seed=3)


def _q(stem, options, answer, text, source="which-fits") -> Question:
    passage = Passage(file="notes.md", heading="Storage", start_line=1,
                      end_line=text.count("\n") + 1, text=text)
    return Question(id="t1", topic="Storage", stem=stem, options=options, answer_index=answer,
                    explanation="From the notes.", passage=passage, source=source)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def test_vocabulary_is_learned_from_the_notes_of_any_subject():
    """Names, aliases and families come from the text: here notes no code has seen."""
    text = "\n".join([
        "- Telescopes: Hubble Space Telescope, James Webb Space Telescope and Kepler",
        "- The Hubble Space Telescope (HST) observes in visible and ultraviolet light.",
        "- The James Webb Space Telescope (JWST) observes in infrared light.",
        "- Kepler searched for exoplanets by watching stars dim; unlike HST it had no camera.",
        "- JWST sits at the L2 point, while HST orbits the Earth.",
        "- Data from JWST and HST is archived by NASA and by ESA.",
        "- NASA runs HST; ESA helped launch JWST and Kepler data is public.",
        "- Most images people know come from the Hubble Space Telescope.",
    ])
    chunks = [Chunk(file="space.md", heading="Telescopes", start_line=1, end_line=8,
                    text=text)]
    vocab = Vocabulary.build(chunks)
    assert vocab.find("the HST and the Hubble Space Telescope")[0] == \
        vocab.find("Hubble Space Telescope")[0]  # "Name (ABBR)" is one name
    hubble = vocab.find("Hubble Space Telescope")[0]
    assert "Kepler" in vocab.family[hubble] and vocab.subject("HST observes light") == hubble


def test_any_topic_phrase_gives_on_topic_self_contained_questions(maker):
    hybrid = "Hybrid connectivity: Site-to-Site VPN, Direct Connect and Transit Gateway"
    assert maker.make(hybrid, 1)[0].topic == hybrid  # a phrase, not a heading: it works
    topic = "Route 53 routing policies"
    questions = maker.make(topic, 3)
    assert len(questions) == 3 and len({q.id for q in questions}) == 3
    wanted = {"route", "53", "routing", "dns", "record"}
    checker = Validator(maker.index.embedder)
    for q in questions:
        assert q.topic == topic
        assert _words(f"{q.passage.heading} {q.passage.text}") & wanted
        assert "___" not in q.stem
        if q.source == "true-false":  # a statement to judge: it stands alone as a sentence
            assert q.options == ["True", "False"] and q.statement.endswith(".")
            assert ":" not in q.statement and len(q.statement.split()) >= 6
            continue
        assert len({o.lower() for o in q.options}) == 4
        assert not (_words(q.answer) - {"use", "with"}) <= _words(q.stem)  # no giveaway
        assert q.stem.endswith("?")
        assert checker.validate(q) == []  # re-checks cleanly, and no two are duplicates
        assert q.passage.file in grade(q, q.answer_index)[1]


def _stem_words(text: str) -> set[str]:
    from rag.text import stems
    return stems(text) | stems(text.replace("-", " "))


@pytest.mark.parametrize("topic", ["Route 53 routing policies", "S3 storage classes and lifecycle",
                                   "CloudFront and Global Accelerator"])
def test_stems_are_questions_that_name_no_option(maker, topic):
    """No copied bullet quoted after "describe:", and no word of any option (in any form:
    "weights" for "Weighted") in the stem outside the section it scopes to, unless every
    option has it. One answer and at most two questions per passage in a set."""
    questions = QuizMaker(maker.tutor, seed=3).make(topic, 5)  # none asked before
    assert len(questions) >= 2
    for q in questions:
        if q.source == "true-false":  # a statement to judge, not a question
            assert q.stem.startswith("True or false") and "describe" not in q.stem
            continue
        assert "describe" not in q.stem and '"' not in q.stem and q.stem.endswith("?")
        if q.source != "which-fits":
            continue
        shared = set.intersection(*(_stem_words(o) for o in q.options))
        told = _stem_words(q.stem) - _stem_words(q.passage.heading.replace(" > ", " "))
        for option in q.options:
            assert not (_stem_words(option) - shared) & told, (q.stem, option)
    chosen = [q.answer for q in questions if q.source != "true-false"]
    assert len(set(chosen)) == len(chosen)
    places = [(q.passage.file, q.passage.start_line) for q in questions]
    assert max(places.count(p) for p in places) <= 2


def test_questions_share_two_words_of_the_topic(maker):
    """"IAM roles and policies" is not any line under an IAM heading: each question's
    section, line or answer names two of the topic's words."""
    wanted = _stem_words("IAM roles and policies")
    for q in QuizMaker(maker.tutor, seed=3).make("IAM roles and policies", 5):
        said = _stem_words(f"{q.passage.heading} {q.stem} {q.answer} {q.passage.text}")
        assert len(wanted & said) >= 2, q.stem


def test_validation_rejects_a_stem_with_a_form_of_an_option(maker):
    text = ("### Routing\n- Weighted\n  - Used for migrations by adjusting weights\n"
            "- Failover\n  - One record is primary, the other secondary")
    q = _q("Which of these is used for migrations by adjusting weights?",
           ["Weighted", "Failover", "Simple", "Latency"], 0, text)
    assert "the stem gives the answer away" in Validator(maker.index.embedder).validate(q)
    q = _q("Which of these is used for migrations by gradually moving over?",
           ["Weighted", "Failover", "Simple", "Gradual"], 0, text)
    assert "the stem names option 'Gradual'" in Validator(maker.index.embedder).validate(q)


def test_kinds_include_statements_with_numbers_and_the_notes_own_scenarios(maker):
    numbers = maker.make("Lambda limits: timeout, memory and storage", 4)
    statements = [q for q in numbers if q.source == "true-statement"]
    assert statements
    for q in statements:  # one option is the note line, the others change its figure
        digits = [re.findall(r"\d+", o) for o in q.options]
        assert len({tuple(d) for d in digits}) == 4
        assert q.answer.rstrip(".").split(": ")[-1] in " ".join(q.passage.text.split())
        assert "a figure they give for something else" in q.explanation  # the confusable one
        assert q.explanation.count(".md") >= 1
    scenario = maker.make("ECS Fargate database credentials as environment variables", 3)
    harvested = [q for q in scenario if q.source == "harvested"]
    assert harvested and "Parameter Store" in harvested[0].answer
    assert "Docker Secrets" in " ".join(harvested[0].options)
    assert "solution" in harvested[0].explanation.lower()


def test_true_false_statements_say_the_notes_figure_or_one_changed(maker):
    """A line with one figure, when the notes give too few other values with its unit for a
    which-statement question, is shown as it is (True) or with the figure changed to one the
    notes give for something else (False); an outline fragment makes no statement."""
    from rag.quiz import _Line

    chunk = next(c for c in maker.index.chunks().values() if "Lambda" in c.heading)
    other = next(c for c in maker.index.chunks().values() if "SQS" in c.heading)
    line = _Line("Lambda functions can run for up to 15 minutes per invocation.", "Lambda",
                 chunk, chunk.start_line)
    values = {"minutes": {"30": ("Messages stay hidden for 30 minutes at most.", other)}}
    seen = {}
    for _ in range(40):
        made = maker.writer.true_false(line, maker.writer.figure_swap(line, values))
        assert made is not None
        seen[made[1]] = made
    assert set(seen) == {True, False}
    stem, _, why = seen[True]
    assert stem.startswith("True or false, according to your notes on ")  # its section
    assert stem.endswith("? " + line.text)
    assert why[0].startswith("True: your notes")
    stem, _, why = seen[False]
    assert "30 minutes" in stem and "15" not in stem and why[0].startswith("False: ")
    assert "15 minutes" in why[0] and "a figure they give for something else" in why[1]
    fragment = _Line("Currently - 15 minute execution limit.", "Lambda", chunk, chunk.start_line)
    assert maker.writer.true_false(fragment, maker.writer.figure_swap(
        fragment, {"minute": {"30": values["minutes"]["30"]}})) is None

    validator = Validator(maker.index.embedder)
    told = Passage(file="notes.md", heading="Lambda", start_line=1, end_line=1,
                   text="- Functions can run for up to 15 minutes")
    for answer, problem in ((1, "also supported"), (0, None)):
        q = Question(id=f"tf{answer}", topic="Lambda", stem="True or false, according to your "
                     "notes? Functions can run for up to 15 minutes.", options=["True", "False"],
                     answer_index=answer, explanation="x", passage=told, source="true-false")
        problems = validator.validate(q, remember=False)
        assert any(problem in p for p in problems) if problem else problems == []
    with pytest.raises(ValueError):
        Question(**{**q.model_dump(), "options": ["True", "False", "Maybe", "No"]})


def test_a_line_asked_as_it_is_and_denied_is_one_fact():
    """Judged blind: a set asked "Destination can be S3" and "Destination cannot be S3"."""
    told = Passage(file="notes.md", heading="VPC Flow Logs", start_line=1, end_line=1,
                   text="- Destination can be S3 or CloudWatch Logs")
    asked = [Question(id=f"tf{i}", topic="VPC flow logs", stem="True or false, according to "
                      f"your notes on VPC Flow Logs? {text}", options=["True", "False"],
                      answer_index=i, explanation="x", passage=told, source="true-false")
             for i, text in enumerate(("Destination can be S3 or CloudWatch Logs.",
                                       "Destination cannot be S3 or CloudWatch Logs."))]
    assert asked[0].fact == asked[1].fact


def test_a_one_thing_topic_needs_all_the_words_that_name_it(maker):
    """"VPC flow logs" names one thing: a VPC Peering line about "traffic flow" is not on it
    (a list topic, "Sigmoid, tanh and ReLU", takes a line naming any of its items)."""
    questions = maker.candidates("VPC flow logs")
    assert questions and all("flow log" in q.passage.heading.lower() for q in questions)


def test_a_topic_the_notes_do_not_cover_is_one_line(maker):
    with pytest.raises(QuizError, match="don't cover") as info:
        maker.make("Quantum Basket Weaving", 2)
    assert "\n" not in str(info.value)


def test_validation_rejects_two_supported_options(maker):
    text = ("- Amazon EFS provides a shared POSIX file system for many instances.\n"
            "- Amazon FSx provides a shared POSIX file system for many instances.")
    q = _q("Which of these provides a shared POSIX file system for many instances?",
           ["EFS", "FSx", "EBS", "Glacier"], 0, text)
    problems = Validator(maker.index.embedder).validate(q)
    assert any("also supported" in p and "FSx" in p for p in problems)


def test_validation_rejects_an_unsupported_answer_and_a_giveaway(maker):
    text = "- Amazon EFS provides a shared POSIX file system for many instances."
    q = _q("Which of these provides a shared POSIX file system for many instances?",
           ["EBS", "EFS", "S3", "Glacier"], 0, text)
    problems = Validator(maker.index.embedder).validate(q)
    assert any(p.startswith("answer not supported") for p in problems)
    assert any("'EFS' is also supported" in p for p in problems)
    given = _q("Which of these, like EFS, provides a shared POSIX file system?",
               ["EFS", "EBS", "S3", "Glacier"], 0, text)
    assert "the stem gives the answer away" in Validator(maker.index.embedder).validate(given)


def test_validation_rejects_duplicates_and_repeated_options(maker):
    text = "- Amazon EFS provides a shared POSIX file system for many instances."
    good = _q("Which of these provides a shared POSIX file system for many instances?",
              ["EFS", "EBS", "S3", "Glacier"], 0, text)
    checker = Validator(maker.index.embedder)
    assert checker.validate(good) == []
    again = good.model_copy(update={"id": "t2", "stem": good.stem.replace("many", "several")})
    assert "near-duplicate of an earlier question" in checker.validate(again)
    same = good.model_copy(update={"id": "t3", "options": ["EFS", "EBS", "ebs", "S3"]})
    assert "options are not distinct" in Validator(maker.index.embedder).validate(same)


def test_topics_come_from_headings(corpus_index):
    names = [t.name for t in list_topics(corpus_index)]
    assert len(names) >= 10
    assert "Simple Storage Service (S3)" in names and "Q&A" not in names
    assert not any(n.startswith(("Understanding", "Analyzing", "Key Points")) for n in names)


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
    assert re.search(r"Please type A(, B, C or D| or B)", out)  # four options, or true-false
    assert "answers so far are saved" in out
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
    db.record(missed.id, missed.topic, (missed.answer_index + 1) % len(missed.options), missed.answer_index,
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


DEEP_LEARNING = Path(__file__).resolve().parents[2] / "shared" / "notes-deep-learning"
DL_TOPICS = ["Recurrent neural networks: GRU and LSTM",
             "Convolutional neural networks: padding, strides and pooling",
             "Optimization algorithms: momentum, RMSprop and Adam",
             "Classic networks: LeNet-5, AlexNet and VGG-16", "Bias and variance",
             "Word embeddings"]


@pytest.mark.skipif(not DEEP_LEARNING.is_dir(),
                    reason="the second subject's notes (../shared/notes-deep-learning) are absent")
def test_prose_notes_of_another_subject_give_questions_that_name_no_option(tmp_path_factory):
    """Prose notes (sections as alternatives, lines that name their subject in other words:
    "Momentum helps ...", "This algorithm ...") give which-fits questions on some of the
    topics, with the same stem checks as the bundled notes."""
    from rag.chains import Tutor
    from rag.config import Settings
    from rag.index import NoteIndex

    cache = __import__("os").environ["STUDYRAG_STORAGE__MODEL_CACHE_DIR"]  # conftest's
    settings = Settings(home=tmp_path_factory.mktemp("dl-home"),
                        storage={"notes_dir": DEEP_LEARNING, "model_cache_dir": cache},
                        answer={"backend": "extractive"})
    NoteIndex(settings).ingest()
    maker = QuizMaker(Tutor(settings), seed=0)
    made = {}
    for topic in DL_TOPICS:
        try:
            made[topic] = maker.make(topic, 6)
        except QuizError:
            made[topic] = []
    covered = [t for t, qs in made.items() if qs]
    assert len(covered) >= 2 and sum(map(len, made.values())) >= 3, made
    checker = Validator(maker.index.embedder)
    for topic, questions in made.items():
        for q in questions:
            assert q.topic == topic
            assert "describe" not in q.stem and '"' not in q.stem
            assert "!" not in q.stem and "`" not in q.stem
            assert checker.validate(q, remember=False) == []
            if q.source == "true-false":
                assert not re.search(r"\b(this|it|we|they)\b", q.statement, re.IGNORECASE)
                continue
            assert q.stem.endswith("?")
            shared = set.intersection(*(_stem_words(o) for o in q.options))
            told = _stem_words(q.stem) - _stem_words(q.passage.heading.replace(" > ", " "))
            for option in q.options:
                assert not (_stem_words(option) - shared) & told, (q.stem, option)
            assert checker.validate(q, remember=False) == []


def test_a_false_statement_turns_the_verb_of_a_note_sentence_the_other_way():
    from rag.quiz import _flipped, _stands_alone

    assert _flipped("GRU can help solve the vanishing gradient problem.") == \
        "GRU cannot help solve the vanishing gradient problem."
    assert _flipped("Deep learning is also enabling new art.") == \
        "Deep learning is not enabling new art."
    assert _flipped("SNS supports many subscriber types.") == \
        "SNS does not support many subscriber types."
    assert _flipped("SNS cannot be used for data streaming.") == \
        "SNS can be used for data streaming."
    assert _flipped("A NAT gateway does not support IPv6 traffic.") == \
        "A NAT gateway supports IPv6 traffic."
    assert _flipped("A cache is always warm after a restart.") is None  # "not always" ≠ never
    assert _flipped("It never works and is not good.") is None  # two denials
    assert _flipped("Some people change the learning rate by hand.") is None  # still true
    assert _flipped("Redis asynchronously replicates the data.") == \
        "Redis does not asynchronously replicate the data."
    assert _stands_alone("CloudFront is a global object cache for static content.")
    assert not _stands_alone("It is a global object cache for static content.")
    assert not _stands_alone("AWS Lambda: Currently - 15 minute execution limit per call.")
    assert not _stands_alone("Port provisioning is quick but the cross-connect takes longer.")


def test_no_false_statement_from_a_sentence_whose_denial_is_no_opposite():
    """Judged blind, these denials were no opposites ("are not two different things", "There
    are not a generalization", "If parameters are not encrypted, then ...")."""
    from rag.quiz import _flipped

    for text in ("There is a generalization of logistic regression called softmax.",
                 "If parameters are encrypted, then KMS is involved.",
                 "In multi-master mode, all instances are read/write.",
                 "CloudWatch Alarms and CloudWatch Events are two different things.",
                 "Aurora Architecture is very different from RDS."):
        assert _flipped(text) is None, text
    assert _flipped("VGW is highly available by design.") == "VGW is not highly available by design."


def test_a_denied_statement_is_not_supported_by_the_line_it_denies(maker):
    questions = [q for q in maker.candidates("CloudFront and Global Accelerator")
                 if q.source == "true-false"]
    assert any(q.answer == "False" and "other way" in q.explanation for q in questions)
    for q in questions:
        line = q.explanation.split('"')[1]  # the note line the statement was made from
        denied = q.answer == "False" and "other way" in q.explanation
        assert (q.statement.rstrip(".") != line.rstrip(".")) == (q.answer == "False")
        assert maker.validator.validate(q, remember=False) == [], q.stem
        if denied:  # the same words with the other polarity: never counted as support
            flipped = q.model_copy(update={"answer_index": 0})
            assert any("not supported" in p for p in
                       maker.validator.validate(flipped, remember=False))


def test_a_topic_with_its_own_section_is_asked_from_that_section(maker):
    """"Route 53 health checks" has a section of its own whose lines name nothing: they are
    about the section, and it comes before the rest of "Route 53"."""
    questions = maker.candidates("Route 53 health checks")
    assert questions
    assert any("Route 53 Health Checks" in q.stem or "Health Checks" in q.passage.heading
               for q in questions[:3])


def test_an_exam_scenario_set_up_is_no_fact_to_judge(maker):
    """A quoted scenario ("> A popular social media website uses ...") describes a made-up
    company: no statement or question is made from its lines."""
    for q in maker.candidates("Lambda@Edge"):
        assert "social media website" not in q.stem, q.stem
