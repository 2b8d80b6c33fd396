"""Documents (PDF, DOCX, PPTX, HTML): converted with headings, lists and pages kept, bad
ones skipped with a reason, indexed incrementally, cited with their page or slide."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from documents import make_folder
from rag.config import Settings
from rag.loading import load_file, load_notes
from rag.models import Passage

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def docs_dir(tmp_path_factory) -> Path:
    return make_folder(tmp_path_factory.mktemp("docs") / "notes")


@pytest.fixture(scope="session")
def docs_settings(docs_dir, tmp_path_factory):
    """The folder indexed once (real embedder, real Chroma)."""
    from conftest import MODEL_CACHE
    from rag.index import NoteIndex

    settings = Settings(home=tmp_path_factory.mktemp("docs-home"),
                        storage={"notes_dir": docs_dir, "model_cache_dir": MODEL_CACHE},
                        answer={"backend": "extractive"})
    NoteIndex(settings).ingest()
    return settings


def _note(folder: Path, rel: str):
    note = load_file(folder / rel, folder, 20_000_000)
    assert not hasattr(note, "reason"), note
    return note


def _page_of(note, text: str) -> int:
    i = next(i for i, line in enumerate(note.lines) if text in line)
    return note.pages[i]


def test_pdf_printed_by_chromium_keeps_headings_and_pages(docs_dir):
    note = _note(docs_dir, "lecture.pdf")
    headings = [line for line in note.lines if line.startswith("#")]
    assert headings == ["# Lecture 3: Storage", "## Object storage", "## Block storage",
                        "### Snapshots", "## File storage"]
    assert len(note.pages) == len(note.lines)
    assert _page_of(note, "single object can be up to 5 TB") == 1
    assert _page_of(note, "EBS volumes attach") == 2
    assert _page_of(note, "EFS is a managed NFS") == 3


def test_docx_headings_and_lists(docs_dir):
    note = _note(docs_dir, "networking.docx")
    assert note.pages is None
    assert "# Networking notes" in note.lines and "## Subnets" in note.lines
    assert "* Public subnet: route to an internet gateway" in note.lines
    assert "2. Network ACLs are stateless" in note.lines


def test_pptx_slides_and_speaker_notes(docs_dir):
    note = _note(docs_dir, "slides/databases.pptx")
    assert _page_of(note, "Week 5") == 1
    assert _page_of(note, "# Aurora") == 3
    assert _page_of(note, "up to 15 read replicas") == 3
    assert _page_of(note, "Speaker note on RDS") == 2
    assert not any("Slide number" in line for line in note.lines)  # markers are not text


def test_saved_web_page(docs_dir):
    note = _note(docs_dir, "queues.html")
    assert "# Messaging" in note.lines and "## SNS" in note.lines
    assert any(line.lstrip("*- ") == "FIFO queues keep the order" for line in note.lines)


def test_bad_documents_are_skipped_with_one_line_reason_and_nothing_else_is_lost(docs_dir):
    report = load_notes(docs_dir)
    reasons = {s.file: s.reason for s in report.skipped}
    assert set(reasons) == {"broken.pdf", "locked.pdf", "scan.pdf", "broken.docx"}
    assert "not a readable PDF" in reasons["broken.pdf"]
    assert "encrypted" in reasons["locked.pdf"]
    assert "text layer" in reasons["scan.pdf"]
    assert "not a readable DOCX" in reasons["broken.docx"]
    assert all("\n" not in str(s) and s.file in str(s) for s in report.skipped)
    assert sorted(f.rel for f in report.files) == [
        "lecture.pdf", "networking.docx", "queues.html", "slides/databases.pptx",
        "vault/serverless.md"]


def test_chunks_never_cross_a_page(docs_dir):
    from rag.chunking import chunk_note

    note = _note(docs_dir, "lecture.pdf")
    chunks = chunk_note(note)
    assert {c.page for c in chunks} == {1, 2, 3}  # tiny pages are not merged into one chunk
    for c in chunks:
        assert set(note.pages[c.start_line - 1:c.end_line]) == {c.page}


def test_passage_json_has_page_only_for_documents():
    md = Passage(file="a.md", heading="", start_line=1, end_line=2, text="x")
    assert "page" not in md.model_dump() and "page" not in json.loads(md.model_dump_json())
    slide = Passage(file="d.pptx", heading="Aurora", start_line=3, end_line=4, text="x", page=3)
    assert slide.model_dump()["page"] == 3
    assert slide.location == "d.pptx › Aurora (slide 3, lines 3–4)"
    assert Passage(file="l.pdf", heading="", start_line=1, end_line=1, text="x",
                   page=2).page_label == "page 2"


def test_retrieval_cites_the_page_and_slide(docs_settings):
    from rag.retrieval import HybridSearch

    search = HybridSearch(docs_settings)
    top = search.retrieve("Which storage attaches to one EC2 instance in one Availability Zone?")[0]
    assert (top.file, top.page) == ("lecture.pdf", 2)
    assert "EBS volumes attach" in top.text
    top = search.retrieve("How many read replicas does Aurora support?")[0]
    assert (top.file, top.page) == ("slides/databases.pptx", 3)


def test_vault_tags_are_metadata_on_the_chunk(docs_settings):
    from rag.index import NoteIndex

    index = NoteIndex(docs_settings)
    chunks = [c for c in index.chunks().values() if c.file == "vault/serverless.md"]
    assert chunks and all(c.tags == ("aws", "exam") for c in chunks)
    assert not any(c.file.startswith("vault/.") for c in index.chunks().values())
    got = index.collection().get(where={"file": "vault/serverless.md"}, include=["metadatas"])
    assert got["metadatas"][0]["tags"] == "aws,exam"  # in Chroma, so a server keeps it too


def test_reindex_is_incremental_by_file_hash(docs_dir, tmp_path):
    from conftest import MODEL_CACHE
    from documents import write_docx
    from rag.index import NoteIndex

    folder = tmp_path / "notes"
    shutil.copytree(docs_dir, folder)
    settings = Settings(home=tmp_path / "home",
                        storage={"notes_dir": folder, "model_cache_dir": MODEL_CACHE},
                        answer={"backend": "extractive"})
    index = NoteIndex(settings)
    first = index.ingest()
    assert first.added_files == 5 and len(first.skipped) == 4
    converted = sorted((settings.index_dir / "documents").glob("*.json"))
    assert len(converted) == 4  # one cached conversion per good document
    again = index.ingest()
    assert (again.unchanged_files, again.updated_files, again.added_files) == (5, 0, 0)
    doc = folder / "networking.docx"
    write_docx(doc)
    import docx

    d = docx.Document(str(doc))
    d.add_paragraph("Transit Gateway connects many VPCs in a hub.")
    d.save(str(doc))
    third = index.ingest()
    assert (third.updated_files, third.unchanged_files) == (1, 4)
    assert any("Transit Gateway" in c.text for c in index.chunks().values())


def test_cli_retrieve_json_names_the_page(docs_settings):
    env = {"STUDYRAG_HOME": str(docs_settings.home),
           "STUDYRAG_STORAGE__NOTES_DIR": str(docs_settings.storage.notes_dir),
           "STUDYRAG_STORAGE__MODEL_CACHE_DIR": str(docs_settings.cache_dir),
           "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "rag.cli", "retrieve", "--json", "--k", "8",
                          "What is Amazon EFS?"], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    passages = json.loads(out.stdout)["passages"]
    pdf = next(p for p in passages if p["file"] == "lecture.pdf")
    assert pdf["page"] == 3
    assert all("page" not in p for p in passages if p["file"].endswith(".md"))


def test_study_guide_cites_the_page(docs_settings):
    from rag.guide import GuideMaker
    from rag.retrieval import HybridSearch

    guide = GuideMaker(HybridSearch(docs_settings)).build("EBS")
    items = [i for s in guide.to_json()["sections"] for i in s["items"]]
    pdf = [i["passage"] for i in items if i["passage"]["file"] == "lecture.pdf"]
    assert pdf and all(p["page"] == 2 for p in pdf)
    assert "lecture.pdf, page 2, line" in guide.to_markdown()


def test_saved_page_in_windows_1252_reads_right(tmp_path):
    page = "<html><body><h1>Café notes</h1><p>Naïve résumé: 5 €</p></body></html>"
    (tmp_path / "old.html").write_bytes(page.encode("cp1252"))
    note = _note(tmp_path, "old.html")
    assert "# Café notes" in note.lines and "Naïve résumé: 5 €" in note.lines
