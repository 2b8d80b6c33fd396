"""Loading: front matter, OneNote bullets, encodings and bad files (real files on disk)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import NotesError
from rag.loading import Skipped, decode_bytes, load_notes, normalise_line, split_front_matter

FIXTURES = Path(__file__).parent / "fixtures" / "notes"


def test_loads_md_and_txt_recursively_with_relative_paths():
    report = load_notes(FIXTURES)
    assert sorted(f.rel for f in report.files) == ["onenote.md", "s3.md", "sub/lambda.txt"]
    assert report.skipped == []


def test_yaml_front_matter_becomes_title_and_keeps_line_numbers():
    note = next(f for f in load_notes(FIXTURES).files if f.rel == "s3.md")
    assert note.title == "S3 basics"
    original = (FIXTURES / "s3.md").read_text().split("\n")
    assert len(note.lines) == len(original)
    assert note.lines[:5] == ("", "", "", "", "")  # front matter blanked, not removed
    assert note.lines[5] == "# S3"


def test_toml_front_matter():
    lines, title = split_front_matter(['+++', 'title = "Lambda notes"', '+++', '# Lambda'])
    assert title == "Lambda notes"
    assert lines == ["", "", "", "# Lambda"]


def test_onenote_bullets_become_nested_markdown_list():
    note = next(f for f in load_notes(FIXTURES).files if f.rel == "onenote.md")
    assert note.lines[1] == "- IAM is GLOBAL"
    assert note.lines[2] == "  - Users"
    assert note.lines[3] == "    - Represent humans or applications"
    assert note.lines[6] == "      - Temporary credentials"
    assert normalise_line("\t\ta. On-Demand Self-Service") == "  - On-Demand Self-Service"


def test_bundled_onenote_export_has_no_raw_glyphs_left():
    corpus = Path(__file__).parent.parent / "corpus"
    note = next(f for f in load_notes(corpus).files
                if f.rel == "solutions-architect-associate-course.md")
    assert not any(line.lstrip().startswith(("•", "○", "§", "□")) for line in note.lines)
    assert sum(line.startswith("- ") for line in note.lines) > 500


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("café notes".encode("utf-8"), "café notes"),
        ("café notes".encode("latin-1"), "café notes"),
        ("\ufeffBOM notes".encode("utf-8"), "BOM notes"),
        ("UTF-16 notes é".encode("utf-16"), "UTF-16 notes é"),
    ],
)
def test_encodings_decode(data, expected):
    text, _ = decode_bytes(data)
    assert text == expected


def test_bad_files_are_skipped_with_a_named_reason(tmp_path):
    (tmp_path / "good.md").write_text("# Good\n\nEC2 is compute.\n")
    (tmp_path / "empty.md").write_text("")
    (tmp_path / "binary.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR" * 50)
    (tmp_path / "only-front.md").write_text("---\ntitle: x\n---\n")
    (tmp_path / "huge.txt").write_text("x" * 2_000_000)
    (tmp_path / "image.png").write_bytes(b"\x89PNG")  # not a note suffix: ignored
    report = load_notes(tmp_path, max_file_mb=1.0)
    assert [f.rel for f in report.files] == ["good.md"]
    reasons = {s.file: s.reason for s in report.skipped}
    assert set(reasons) == {"empty.md", "binary.md", "only-front.md", "huge.txt"}
    assert "empty" in reasons["empty.md"]
    assert "binary" in reasons["binary.md"]
    assert "too large" in reasons["huge.txt"]
    assert all(isinstance(s, Skipped) and str(s).startswith("skipped ") for s in report.skipped)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(NotesError, match="does not exist"):
        load_notes(tmp_path / "nope")
    (tmp_path / "file.md").write_text("x")
    with pytest.raises(NotesError, match="not a folder"):
        load_notes(tmp_path / "file.md")
