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


# --- Obsidian vaults -------------------------------------------------------------------------
def _vault(tmp_path: Path) -> Path:
    from documents import VAULT_NOTE

    vault = tmp_path / "vault"
    for hidden, name in ((".obsidian", "workspace.md"), (".trash", "old.md")):
        (vault / hidden).mkdir(parents=True)
        (vault / hidden / name).write_text("# Not a note\nsettings or deleted text\n")
    (vault / "serverless.md").write_text(VAULT_NOTE)
    (vault / "plain.md").write_text("---\ntags: [aws, s3]\n---\n# S3\nSee [[Glacier]].\n")
    (vault / "list.md").write_text("---\ntags: storage, exam\ntitle: x\n---\n# x\nbody\n")
    return vault


def test_vault_skips_obsidian_and_trash_folders(tmp_path):
    report = load_notes(_vault(tmp_path))
    assert sorted(f.rel for f in report.files) == ["list.md", "plain.md", "serverless.md"]
    assert report.skipped == []


def test_wikilinks_read_as_text_and_image_embeds_go_line_numbers_kept(tmp_path):
    vault = _vault(tmp_path)
    note = next(f for f in load_notes(vault).files if f.rel == "serverless.md")
    original = (vault / "serverless.md").read_text().split("\n")
    assert len(note.lines) == len(original)
    at = {i: line for i, line in enumerate(note.lines)}
    assert at[8] == "Put the code behind API Gateway and keep state in a table."
    assert at[9] == ""  # ![[lambda-diagram.png]]
    assert at[10] == "- A function runs for at most 15 minutes, see Lambda limits: Timeout."
    assert not any("[[" in line for line in note.lines)


@pytest.mark.parametrize("line, shown", [
    ("[[Page]]", "Page"),
    ("[[Page|the alias]]", "the alias"),
    ("[[Page#Heading|alias]]", "alias"),
    ("[[#Heading]] only", "Heading only"),
    ("![[diagram.PNG|300]] text", " text"),
    ("![[Other note]]", "Other note"),
    ("[not a wikilink](x.md)", "[not a wikilink](x.md)"),
])
def test_wikilink_forms(line, shown):
    assert normalise_line(line) == shown


def test_front_matter_tags_in_every_yaml_form(tmp_path):
    files = {f.rel: f for f in load_notes(_vault(tmp_path)).files}
    assert files["serverless.md"].tags == ("aws", "exam")  # a "- item" list, '#' dropped
    assert files["plain.md"].tags == ("aws", "s3")  # [a, b]
    assert files["list.md"].tags == ("storage", "exam")  # a, b
    assert files["serverless.md"].title == "Serverless"
