"""The line-vector cache: embeds only new chunks, survives a damaged file and an interrupted
pass, stays small after deletions, ranks by best line."""

from __future__ import annotations

from rag.extractive import line_texts
from rag.lines import LineIndex
from rag.models import Chunk


class Counting:
    """The real embedder, counting the texts it is asked to embed; it can be made to fail
    after some calls (an interrupted pass)."""

    def __init__(self, embedder, fail_after: int | None = None):
        self.embedder, self.texts, self.calls, self.fail_after = embedder, 0, 0, fail_after

    def encode(self, texts):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt
        self.calls += 1
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
    for meta in tmp_path.glob("lines*.json"):
        meta.write_text("{not json", encoding="utf-8")
    damaged = LineIndex(tmp_path)
    damaged.refresh("r2", chunks, lambda: counting)
    assert counting.texts == 8 and damaged.vectors(chunks["c"]) is not None


def test_chunks_rank_by_their_best_line(tmp_path, corpus_index):
    lines = LineIndex(tmp_path)
    lines.refresh("r1", _chunks(), lambda: corpus_index.embedder)
    question = corpus_index.embedder.encode(["How big can a single object be?"])[0]
    assert [cid for cid, _ in lines.search(question, 2)][0] == "b"


def _many(n: int) -> dict[str, Chunk]:
    return {f"c{i}": Chunk(f"f{i}.md", f"Topic {i}", 1, 1, f"- Fact number {i} about topic {i}")
            for i in range(n)}


def test_an_interrupted_pass_keeps_its_finished_batches(tmp_path, corpus_index):
    chunks = _many(10)
    failing = Counting(corpus_index.embedder, fail_after=2)
    try:
        LineIndex(tmp_path, batch_chunks=3).refresh("r1", chunks, lambda: failing)
    except KeyboardInterrupt:
        pass
    assert failing.texts == 6  # two batches of three chunks embedded, then interrupted
    counting = Counting(corpus_index.embedder)
    resumed = LineIndex(tmp_path, batch_chunks=3)
    resumed.refresh("r1", chunks, lambda: counting)
    assert counting.texts == 4  # only the chunks the interrupted pass did not save
    fresh = LineIndex(tmp_path)
    fresh.refresh("r1", chunks, lambda: counting)
    assert counting.texts == 4 and all(fresh.vectors(c) is not None for c in chunks.values())


def test_deleted_chunks_do_not_pile_up_on_disk(tmp_path, corpus_index):
    chunks = _many(8)
    lines = LineIndex(tmp_path, batch_chunks=2)
    lines.refresh("r1", chunks, lambda: corpus_index.embedder)
    assert len(list(tmp_path.glob("lines*.json"))) == 4
    kept = {k: chunks[k] for k in ("c0", "c1")}
    lines.refresh("r2", kept, lambda: corpus_index.embedder)
    assert len(list(tmp_path.glob("lines*.json"))) == 1  # merged: 6 of 8 rows were dead
    again = LineIndex(tmp_path)
    counting = Counting(corpus_index.embedder)
    again.refresh("r2", kept, lambda: counting)
    assert counting.texts == 0 and again.vectors(chunks["c0"]) is not None


def test_search_over_many_lines_ranks_as_a_full_sort_does(tmp_path):
    import numpy as np

    rng = np.random.default_rng(1)
    matrix = rng.standard_normal((20_000, 8)).astype(np.float32)
    lines = LineIndex(tmp_path)
    lines._matrix, lines._owner = matrix, [f"c{i // 7}" for i in range(len(matrix))]
    qvec = rng.standard_normal(8).astype(np.float32)
    sims = matrix @ qvec
    reference: dict[str, float] = {}
    for row in np.argsort(-sims, kind="stable"):
        reference.setdefault(lines._owner[row], float(sims[row]))
    for n in (5, 40, 2000, 1 << 30):  # 2000 chunks need more rows than the partial sort
        assert lines.search(qvec, n) == list(reference.items())[:n]
    # one chunk owning almost every line: the best rows hold one chunk, the rest is sorted too
    lines._owner = ["a"] * len(matrix)
    lines._owner[int(np.argmin(sims))] = "b"
    assert lines.search(qvec, 2) == [("a", float(sims.max())), ("b", float(sims.min()))]
