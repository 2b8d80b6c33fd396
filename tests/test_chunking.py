"""Chunking: heading paths, exact line spans, splitting and merging."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.chunking import chunk_note
from rag.loading import load_notes
from rag.models import NoteFile

REPO = Path(__file__).parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "notes"


def note(lines: list[str], rel: str = "n.md") -> NoteFile:
    return NoteFile(path=rel, rel=rel, lines=tuple(lines), title="T")


def test_heading_paths_and_spans_on_fixture():
    s3 = next(f for f in load_notes(FIXTURES).files if f.rel == "s3.md")
    chunks = chunk_note(s3, chunk_size=200, overlap=0, min_chars=0)
    headings = [c.heading for c in chunks]
    assert headings == ["S3", "S3 > Storage classes", "S3 > Limits"]
    classes = chunks[1]
    original = (FIXTURES / "s3.md").read_text().split("\n")
    assert original[classes.start_line - 1] == "## Storage classes"
    assert original[classes.end_line - 1] == "  - Retrieval takes up to 12 hours"
    assert classes.embed_text.startswith("S3 basics > S3 > Storage classes\n")


@pytest.mark.parametrize("size", [300, 900])
def test_every_chunk_span_maps_back_to_the_real_text(size):
    """Each chunk's words all occur in the original lines it claims to cover."""
    for f in load_notes(REPO / "corpus").files:
        original = (REPO / "corpus" / f.rel).read_text(encoding="utf-8").split("\n")
        for c in chunk_note(f, chunk_size=size, overlap=size // 6, min_chars=size // 4):
            assert 1 <= c.start_line <= c.end_line <= len(original)
            span = " ".join(original[c.start_line - 1: c.end_line])
            for word in c.text.split()[:8] + c.text.split()[-8:]:
                word = word.strip("-*_`")
                if len(word) > 3 and word.isalpha():
                    assert word in span, (f.rel, c.start_line, word)


def test_long_section_is_split_with_overlap_and_no_duplicates():
    lines = ["# Big"] + [f"- fact number {i} about EC2 instance families" for i in range(60)]
    chunks = chunk_note(note(lines), chunk_size=400, overlap=100, min_chars=50)
    assert len(chunks) > 3
    assert all(len(c.text) <= 400 + 60 for c in chunks)
    assert len({c.id for c in chunks}) == len(chunks)
    for a, b in zip(chunks, chunks[1:]):
        assert b.start_line <= a.end_line + 1  # contiguous or overlapping
        assert b.end_line > a.end_line  # always progresses


def test_tiny_sections_are_merged():
    lines = ["# A", "", "## One", "short", "## Two", "also short", "## Three", "tiny"]
    chunks = chunk_note(note(lines), chunk_size=500, overlap=50, min_chars=100)
    assert len(chunks) == 1
    assert chunks[0].heading == "A"
    assert (chunks[0].start_line, chunks[0].end_line) == (3, 8)  # "# A" has no body


def test_hash_in_code_fence_is_not_a_heading():
    lines = ["# Real", "text here", "```bash", "# not a heading", "```", "more"]
    chunks = chunk_note(note(lines), chunk_size=500, overlap=0, min_chars=0)
    assert [c.heading for c in chunks] == ["Real"]


def test_a_single_huge_line_is_split_by_sentences():
    lines = ["# H", " ".join(f"Sentence {i} is about S3 buckets." for i in range(400))]
    chunks = chunk_note(note(lines), chunk_size=500, overlap=50, min_chars=50)
    assert len(chunks) > 5
    assert all(c.start_line == c.end_line == 2 for c in chunks[1:])
    assert all(len(c.text) <= 520 for c in chunks)


def test_a_code_fence_opened_after_a_bullet_closes_before_the_next_heading():
    """"- ```" opens a fence too; missing it made the closing fence open one, so every later
    heading stuck to the previous section."""
    lines = ["# Top", "## Regularization", "- update:", "  - ```", "    # w = w - a * dw",
             "    ```", "- penalises large weights", "## Dropout", "- drops units at random"]
    chunks = chunk_note(note(lines), chunk_size=120, overlap=0, min_chars=0)
    assert [c.heading for c in chunks] == ["Top > Regularization", "Top > Dropout"]
    assert chunks[1].start_line == 8


DEEP_LEARNING = REPO.parent / "shared" / "notes-deep-learning"


@pytest.mark.skipif(not DEEP_LEARNING.is_dir(), reason="the deep-learning notes are not here")
def test_deep_learning_sections_after_a_bulleted_fence_keep_their_own_heading():
    f = next(f for f in load_notes(DEEP_LEARNING).files
             if f.rel == "2-improving-deep-neural-networks.md")
    chunks = chunk_note(f)
    after = [c for c in chunks if c.start_line > 170]
    assert after and not any(c.heading.endswith("> Regularization") for c in after)
    assert any(c.heading.endswith("> Dropout Regularization") for c in after)
