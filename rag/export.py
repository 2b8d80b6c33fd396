"""Practice questions out of studyrag: an Anki package (genanki) or a CSV file.

Anki matches notes by their guid, so each note's guid is derived from the question's id (itself
a hash of the note text the question tests): importing a newer export updates the notes
instead of duplicating them. Files are written beside the target and renamed into place, so a
failed export never leaves half a file or clobbers the previous one.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import itertools
import os
import sqlite3
import tempfile
import time
import zipfile
from pathlib import Path

import genanki

from rag.errors import StudyragError

LETTERS = "ABCD"
# Fixed for ever: Anki recognises the note type (and updates its notes) by this id.
MODEL_ID = 1_739_420_562
FIELDS = ["Question", "Options", "Answer", "Explanation", "Source", "Passage"]
CSS = """.card{font-family:system-ui,sans-serif;font-size:18px;text-align:left;max-width:46em;
margin:auto}ol.options{list-style-type:upper-alpha}.source{color:#666;font-size:14px;
margin-top:1em}blockquote{font-size:15px;border-left:3px solid #ccc;margin:.5em 0;
padding-left:.8em;white-space:pre-wrap}"""
MODEL = genanki.Model(
    MODEL_ID, "studyrag practice question",
    fields=[{"name": name} for name in FIELDS],
    templates=[{
        "name": "Question",
        "qfmt": "<div class=question>{{Question}}</div>{{Options}}",
        "afmt": "{{FrontSide}}<hr id=answer><b>{{Answer}}</b><p>{{Explanation}}</p>"
                "<div class=source>{{Source}}</div><blockquote>{{Passage}}</blockquote>",
    }],
    css=CSS, sort_field_index=0)
CSV_COLUMNS = ["id", "topic", "question", "option_a", "option_b", "option_c", "option_d",
               "answer", "answer_text", "explanation", "file", "heading", "start_line",
               "end_line", "passage"]


class ExportError(StudyragError):
    """Nothing to export, or the output file cannot be written."""


def guid(question) -> str:
    """The note's guid: the same question always gets the same one."""
    return genanki.guid_for("studyrag", question.id)


def _deck_id(name: str) -> int:
    return (1 << 30) + int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % (1 << 30)


def _tag(topic: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in topic.strip()) or "notes"


def _html(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


def note(question) -> genanki.Note:
    """Question and options on the front; answer, explanation and the cited passage on the back."""
    options = "".join(f"<li>{_html(o)}</li>" for o in question.options)
    passage = question.passage
    return genanki.Note(
        model=MODEL, guid=guid(question), tags=["studyrag", _tag(question.topic)],
        fields=[_html(question.stem), f"<ol class=options>{options}</ol>",
                _html(f"{question.letter}. {question.answer}"), _html(question.explanation),
                _html(passage.location), _html(passage.text)])


def questions_from_progress(progress, topic: str | None = None) -> list:
    """The questions the student has practised (saved with their progress), topic-filtered
    the way ``study quiz`` filters (a case-insensitive part of the topic name)."""
    from pydantic import ValidationError

    from rag.quiz import Question

    out = []
    for card in progress.cards():
        if not card.question_json or (topic and topic.lower() not in card.topic.lower()):
            continue
        try:
            out.append(Question.model_validate_json(card.question_json))
        except ValidationError:  # saved by another version: not exportable
            continue
    return out


def _checked(questions: list) -> list:
    unique = list({q.id: q for q in questions}.values())
    if not unique:
        raise ExportError("No practice questions to export yet: answer some with `study quiz`, "
                          "or add `--new 20` to write new ones from your notes.")
    return unique


def anki_bytes(questions: list, deck_name: str = "studyrag") -> bytes:
    """The .apkg (a zip holding Anki's SQLite collection) for these questions."""
    deck = genanki.Deck(_deck_id(deck_name), deck_name)
    for q in _checked(questions):
        deck.add_note(note(q))
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="studyrag-anki-") as tmp:
        # genanki's write_to_file leaves its temporary collection behind; this does not.
        db = Path(tmp) / "collection.anki2"
        conn = sqlite3.connect(db)
        genanki.Package(deck).write_to_db(conn.cursor(), now, itertools.count(int(now * 1000)))
        conn.commit()
        conn.close()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(db, "collection.anki2")
            z.writestr("media", "{}")
    return buf.getvalue()


def csv_text(questions: list) -> str:
    """One row per question: text, options, answer and the cited passage's location."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for q in _checked(questions):
        p = q.passage
        writer.writerow([q.id, q.topic, q.stem, *q.options, *[""] * (4 - len(q.options)),
                         q.letter, q.answer, q.explanation,
                         p.file, p.heading, p.start_line, p.end_line, p.text])
    return buf.getvalue()


def _folder_ok(path: Path) -> Path:
    path = Path(path).expanduser()
    if path.is_dir():
        raise ExportError(f"{path} is a folder: give a file name in it.")
    if not path.parent.is_dir():
        raise ExportError(f"The folder {path.parent} does not exist.")
    return path


def target(path: Path, suffix: str) -> Path:
    """The output file, checked before any work: ends in ``suffix``, its folder exists."""
    path = _folder_ok(path)
    if path.suffix.lower() != suffix:
        raise ExportError(f"The output file {path.name} should end in {suffix}.")
    return path


def write(path: Path, data: bytes | str) -> Path:
    """Write the whole file beside ``path``, then rename it into place (never half a file)."""
    path = _folder_ok(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            os.fchmod(fd, 0o644)  # mkstemp's 0600 would make the export private
            with os.fdopen(fd, "wb") as out:
                out.write(raw)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        raise ExportError(f"Cannot write {path}: {exc.strerror or exc}.") from exc
    return path
