"""The line-vector cache: embeds only new chunks, survives a damaged file, ranks by best line."""

from __future__ import annotations

from rag.extractive import line_texts
from rag.lines import LineIndex
from rag.models import Chunk


class Counting:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, embedder):
        self.embedder, self.texts = embedder, 0

    def encode(self, texts):
        self.texts += len(texts)
        return self.embedder.encode(texts)


def _chunks() -> dict[str, Chunk]:
    a = Chunk("a.md", "Lambda", 1, 2, "- Functions run up to 15 minutes\n- Memory from 128 MB")
    b = Chunk("b.md", "S3", 1, 1, "- Objects can be up to 5 TB in size")
    return {"a": a, "b": b}


def test_only_new_chunks_are_embedded_and_a_damaged_cache_is_rebuilt(tmp_path, corpus_index):
    counting = Counting(corpus_index.embedder)
    chunks = _chunks()
    lines = LineIndex(tmp_path)
    lines.refresh("r1", chunks, lambda: counting)
    assert counting.texts == 3 and len(lines.vectors(chunks["a"])) == len(line_texts(chunks["a"]))
    again = LineIndex(tmp_path)  # a new process: loads the saved vectors, embeds nothing
    again.refresh("r1", chunks, lambda: counting)
    assert counting.texts == 3
    chunks["c"] = Chunk("c.md", "EBS", 1, 1, "- Snapshots are stored incrementally in S3")
    again.refresh("r2", chunks, lambda: counting)
    assert counting.texts == 4
    (tmp_path / "lines.json").write_text("{not json", encoding="utf-8")
    damaged = LineIndex(tmp_path)
    damaged.refresh("r2", chunks, lambda: counting)
    assert counting.texts == 8 and damaged.vectors(chunks["c"]) is not None


def test_chunks_rank_by_their_best_line(tmp_path, corpus_index):
    lines = LineIndex(tmp_path)
    lines.refresh("r1", _chunks(), lambda: corpus_index.embedder)
    question = corpus_index.embedder.encode(["How big can a single object be?"])[0]
    assert [cid for cid, _ in lines.search(question, 2)][0] == "b"
