"""Export to Anki and CSV: the real .apkg (a zip holding Anki's SQLite collection) opened with
zipfile + sqlite3, stable guids across exports, the CLI and its one-line errors."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
import zipfile

import pytest

from rag import export
from rag.progress import Progress
from rag.quiz import QuizMaker


@pytest.fixture(scope="module")
def questions(tutor):
    return QuizMaker(tutor, seed=5).make("S3", 3) + QuizMaker(tutor, seed=5).make("EC2", 2)


def _open_apkg(data: bytes, tmp_path) -> dict:
    """Notes, cards, models and decks of an .apkg, read back the way Anki would read them."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert "collection.anki2" in z.namelist()
        db = tmp_path / f"collection-{time.monotonic_ns()}.anki2"
        db.write_bytes(z.read("collection.anki2"))
    with sqlite3.connect(db) as conn:
        notes = conn.execute("SELECT id, guid, mid, tags, flds FROM notes ORDER BY id").fetchall()
        cards = conn.execute("SELECT nid, did FROM cards").fetchall()
        models, decks = conn.execute("SELECT models, decks FROM col").fetchone()
    return {"notes": [{"id": n[0], "guid": n[1], "mid": n[2], "tags": n[3].split(),
                       "fields": n[4].split("\x1f")} for n in notes],
            "cards": cards, "models": json.loads(models), "decks": json.loads(decks)}


def _record_all(progress: Progress, questions) -> None:
    for i, q in enumerate(questions):
        chosen = q.answer_index if i % 2 else (q.answer_index + 1) % len(q.options)
        progress.record(q.id, q.topic, chosen, q.answer_index, question_json=q.model_dump_json())


def test_anki_package_has_front_back_and_citation(questions, tmp_path):
    apkg = _open_apkg(export.anki_bytes(questions, "studyrag::test"), tmp_path)
    assert len(apkg["notes"]) == len(questions) == len(apkg["cards"])
    model = apkg["models"][str(export.MODEL_ID)]
    assert [f["name"] for f in model["flds"]] == export.FIELDS
    front, back = model["tmpls"][0]["qfmt"], model["tmpls"][0]["afmt"]
    assert "{{Question}}" in front and "{{Options}}" in front and "{{Answer}}" not in front
    assert all("{{" + f + "}}" in back for f in ("Answer", "Explanation", "Source", "Passage"))
    assert "studyrag::test" in {d["name"] for d in apkg["decks"].values()}
    by_guid = {n["guid"]: n for n in apkg["notes"]}
    for q in questions:
        n = by_guid[export.guid(q)]
        stem, options, answer, explanation, source, passage = n["fields"]
        assert n["mid"] == export.MODEL_ID
        assert stem == export._html(q.stem)
        assert all(export._html(o) in options for o in q.options)
        assert answer == export._html(f"{q.letter}. {q.answer}")
        assert explanation == export._html(q.explanation)
        p = q.passage
        assert source == export._html(f"{p.file} › {p.heading} (lines {p.start_line}–"
                                      f"{p.end_line})")
        assert passage.startswith(export._html(p.text.split("\n")[0]))
        assert "studyrag" in n["tags"] and export._tag(q.topic) in n["tags"]


def test_guids_are_stable_across_exports_so_reimport_updates(questions, tmp_path):
    first = _open_apkg(export.anki_bytes(questions[:3]), tmp_path)
    time.sleep(0.01)
    second = _open_apkg(export.anki_bytes(list(reversed(questions))), tmp_path)
    guids_first = {n["guid"] for n in first["notes"]}
    guids_second = {n["guid"] for n in second["notes"]}
    assert guids_first < guids_second  # same questions, same guids; the new ones added
    assert len(guids_second) == len(questions)  # one note per question, none duplicated
    assert {n["id"] for n in first["notes"]} != {n["id"] for n in second["notes"]}
    assert export.guid(questions[0]) != export.guid(questions[1])
    twice = _open_apkg(export.anki_bytes(questions * 2), tmp_path)  # a question twice: one note
    assert len(twice["notes"]) == len(questions)


def test_cli_exports_practised_questions_by_topic_to_anki_and_csv(questions, tmp_path, capsys):
    from rag.cli import main

    home = tmp_path / "home-export"  # only the progress database: no index needed
    _record_all(Progress(home / "progress.sqlite3"), questions)
    out = tmp_path / "deck.apkg"
    assert main(["--home", str(home), "export", "anki", "--out", str(out), "--topic", "ec2"]) == 0
    assert "Wrote 2 questions" in capsys.readouterr().out
    ec2 = [q for q in questions if "ec2" in q.topic.lower()]
    assert {n["guid"] for n in _open_apkg(out.read_bytes(), tmp_path)["notes"]} == \
        {export.guid(q) for q in ec2}

    table = tmp_path / "all.csv"
    assert main(["--home", str(home), "export", "csv", "--out", str(table)]) == 0
    rows = list(csv.DictReader(table.open(encoding="utf-8", newline="")))
    assert list(rows[0]) == export.CSV_COLUMNS
    assert {r["id"] for r in rows} == {q.id for q in questions}
    for r in rows:
        q = next(x for x in questions if x.id == r["id"])
        options = [r["option_a"], r["option_b"], r["option_c"], r["option_d"]]
        assert [o for o in options if o] == q.options  # a true-false question has two
        assert r["answer"] == q.letter and r["answer_text"] == q.answer
        assert (r["file"], int(r["start_line"]), int(r["end_line"])) == (
            q.passage.file, q.passage.start_line, q.passage.end_line)
        assert r["passage"] == q.passage.text


def test_cli_export_new_questions_from_the_notes(corpus_settings, tmp_path, capsys):
    from rag.cli import main

    out = tmp_path / "new.apkg"
    args = ["--home", str(corpus_settings.home), "export", "anki", "--out", str(out),
            "--topic", "EC2", "--new", "3"]
    assert main(args) == 0
    first = _open_apkg(out.read_bytes(), tmp_path)
    assert len(first["notes"]) >= 3
    assert main(args) == 0  # the same export again: the same notes, options in the same order
    again = _open_apkg(out.read_bytes(), tmp_path)
    assert sorted((n["guid"], n["fields"][1]) for n in again["notes"]) == \
        sorted((n["guid"], n["fields"][1]) for n in first["notes"])
    capsys.readouterr()


@pytest.mark.parametrize("argv, message", [
    (["export", "anki", "--out", "{tmp}/deck.csv"], "should end in .apkg"),
    (["export", "csv", "--out", "{tmp}/missing/x.csv"], "does not exist"),
    (["export", "anki", "--out", "{tmp}/keep.apkg"], "No practice questions to export yet"),
    (["export", "csv", "--out", "{tmp}/keep.csv", "--new", "-1"], "--new must be"),
])
def test_bad_export_is_one_line_and_loses_nothing(argv, message, tmp_path, capsys):
    from rag.cli import main

    keep = {tmp_path / "keep.apkg": b"previous export", tmp_path / "keep.csv": b"id\n"}
    for path, data in keep.items():
        path.write_bytes(data)
    code = main(["--home", str(tmp_path / "empty-home"),
                 *[a.replace("{tmp}", str(tmp_path)) for a in argv]])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert all(path.read_bytes() == data for path, data in keep.items())
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["keep.apkg",
                                                                         "keep.csv"]


def test_a_true_false_question_exports_with_empty_third_and_fourth_options(questions):
    from rag.quiz import Question

    base = questions[0]
    told = Question(**{**base.model_dump(), "id": "tf", "source": "true-false",
                       "stem": "True or false, according to your notes? Objects can be 5 TB.",
                       "options": ["True", "False"], "answer_index": 0})
    rows = list(csv.DictReader(io.StringIO(export.csv_text([told]))))
    assert rows[0]["option_a"] == "True" and rows[0]["option_b"] == "False"
    assert rows[0]["option_c"] == rows[0]["option_d"] == "" and rows[0]["answer"] == "A"
    assert rows[0]["answer_text"] == "True" and rows[0]["passage"] == base.passage.text
