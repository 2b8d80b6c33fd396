"""Incremental ingest against a real Chroma and the real embedding model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag.config import Settings
from rag.errors import IndexMissingError
from rag.index import NoteIndex, fingerprint
from rag.retrieval import HybridSearch

FIXTURES = Path(__file__).parent / "fixtures" / "notes"


@pytest.fixture
def notes(tmp_path) -> Path:
    folder = tmp_path / "notes"
    shutil.copytree(FIXTURES, folder)
    return folder


@pytest.fixture
def settings(tmp_path, notes) -> Settings:
    return Settings(home=tmp_path / "home",
                    storage={"notes_dir": notes},
                    chunking={"size": 300, "overlap": 50, "min_chars": 50})


def files_in_index(index: NoteIndex) -> set[str]:
    return {c.file for c in index.chunks().values()}


def test_add_change_delete_a_file(settings, notes):
    index = NoteIndex(settings)
    first = index.ingest()
    assert (first.files, first.added_files) == (3, 3)
    assert files_in_index(index) == {"s3.md", "onenote.md", "sub/lambda.txt"}

    again = index.ingest()
    assert (again.unchanged_files, again.added_files, again.updated_files) == (3, 0, 0)
    assert again.chunks == first.chunks

    (notes / "s3.md").write_text("# S3\n\nS3 Intelligent-Tiering moves objects between tiers.\n")
    (notes / "sub" / "lambda.txt").unlink()
    (notes / "dynamo.md").write_text("# DynamoDB\n\nDynamoDB Streams keep records 24 hours.\n")
    changed = index.ingest()
    assert (changed.added_files, changed.updated_files, changed.removed_files) == (1, 1, 1)
    assert files_in_index(index) == {"s3.md", "onenote.md", "dynamo.md"}
    texts = " ".join(c.text for c in index.chunks().values())
    assert "Intelligent-Tiering" in texts and "Glacier Deep Archive" not in texts
    assert index.count() == len(index.chunks())

    hit = HybridSearch(settings, index).retrieve("How long do DynamoDB Streams keep records?")
    assert hit[0].file == "dynamo.md"


def test_changing_chunk_settings_rebuilds_cleanly(settings):
    NoteIndex(settings).ingest()
    bigger = settings.updated(chunking={"size": 1200})
    assert fingerprint(bigger) != fingerprint(settings)
    index = NoteIndex(bigger)
    report = index.ingest()
    assert report.added_files == 3  # nothing reused from the other configuration
    names = [c.name for c in index.client.list_collections()]
    assert names == [index.name]  # the stale collection was dropped


def test_second_folder_is_indexed_alongside(settings, tmp_path):
    index = NoteIndex(settings)
    index.ingest()
    other = tmp_path / "other"
    other.mkdir()
    (other / "kinesis.md").write_text("# Kinesis\n\nKinesis Data Streams keep data 24 hours.\n")
    index.ingest(other)
    assert "kinesis.md" in files_in_index(index) and "s3.md" in files_in_index(index)
    assert index.remove_folder(other) >= 1
    assert "kinesis.md" not in files_in_index(index)


def test_no_index_yet_is_a_clear_error(settings):
    with pytest.raises(IndexMissingError, match="study ingest"):
        HybridSearch(settings).retrieve("What is S3?")


def test_bm25_cache_is_reused_and_survives_a_new_process(settings):
    NoteIndex(settings).ingest()
    fresh = NoteIndex(settings)  # a new "process": loads the saved BM25 cache
    assert fresh.bm25_search("Glacier Deep Archive", 3)
    assert fresh.chunk(fresh.bm25_search("Glacier", 1)[0][0]).file == "s3.md"


def test_rebuild_builds_aside_and_ctrl_c_keeps_the_old_index(settings, notes):
    index = NoteIndex(settings)
    index.ingest()
    before = index.count()

    def interrupt(i, total, name):
        if i == 2:
            raise KeyboardInterrupt  # what Ctrl-C does in the middle of a rebuild

    (notes / "s3.md").write_text("# S3\n\nS3 Object Lock stops deletes.\n")
    with pytest.raises(KeyboardInterrupt):
        NoteIndex(settings).ingest(rebuild=True, progress=interrupt)
    survivor = NoteIndex(settings)
    assert survivor.count() == before  # the previous index still answers, untouched
    assert "Glacier Deep Archive" in " ".join(c.text for c in survivor.chunks().values())

    report = NoteIndex(settings).ingest(rebuild=True)
    assert report.added_files == 3
    rebuilt = NoteIndex(settings)
    assert [c.name for c in rebuilt.client.list_collections()] == [rebuilt.name]
    assert "Object Lock" in " ".join(c.text for c in rebuilt.chunks().values())
    assert HybridSearch(settings, rebuilt).retrieve("What stops deletes in S3?")[0].file == "s3.md"


def test_a_running_reader_sees_another_instances_ingest_and_survives_its_rebuild(settings, notes):
    """The app keeps one NoteIndex for hours while `study ingest` runs in a shell: the
    reader's collection handle must follow a new revision and a rebuild's swap."""
    settings = settings.updated(storage={"revision_check_s": 0.0})
    reader = NoteIndex(settings)
    reader.ingest()
    search = HybridSearch(settings, reader)
    assert "dynamo.md" not in files_in_index(reader)

    (notes / "dynamo.md").write_text("# DynamoDB\n\nDynamoDB Streams keep records 24 hours.\n")
    NoteIndex(settings).ingest()  # another process's ingest
    assert "dynamo.md" in files_in_index(reader)
    assert search.retrieve("How long do DynamoDB Streams keep records?")[0].file == "dynamo.md"

    NoteIndex(settings).ingest(rebuild=True)  # drops the collection the reader had open
    assert search.retrieve("How long do DynamoDB Streams keep records?")[0].file == "dynamo.md"
    assert reader.count() == len(reader.chunks())
