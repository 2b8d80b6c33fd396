"""Fusion and hybrid retrieval on the real bundled notes."""

from __future__ import annotations

import pytest

from rag.errors import InputError
from rag.retrieval import clean_question, rrf


def test_rrf_matches_the_formula():
    scores = rrf([["a", "b", "c"], ["c", "a"]], k=60)
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert scores["b"] == pytest.approx(1 / 62)
    assert sorted(scores, key=scores.get, reverse=True) == ["a", "c", "b"]


def test_rrf_weights():
    scores = rrf([["a"], ["b"]], k=10, weights=[1.0, 2.0])
    assert scores["b"] == pytest.approx(2 * scores["a"])


@pytest.mark.parametrize("question", ["", "   ", "?!?...", None])
def test_empty_questions_are_rejected(question):
    with pytest.raises(InputError, match="empty"):
        clean_question(question)


def test_huge_question_is_trimmed():
    assert len(clean_question("S3 " * 20000)) <= 2000


def test_hybrid_finds_the_passage(search):
    passages = search.retrieve("How many access keys can an IAM user have?", k=5)
    assert len(passages) == 5
    top = passages[0]
    assert top.file == "solutions-architect-associate-course.md"
    assert "two access keys" in top.text
    assert top.start_line <= 36 <= top.end_line


def test_results_are_not_near_duplicates(search):
    passages = search.retrieve("S3 storage classes minimum duration", k=5)
    spans = [(p.file, p.start_line, p.end_line) for p in passages]
    assert len(set(spans)) == 5
    texts = [set(p.text.split()) for p in passages]
    for i, a in enumerate(texts):
        for b in texts[i + 1:]:
            assert len(a & b) / min(len(a), len(b)) < 0.9


def test_langchain_retriever_composes(search):
    docs = search.as_retriever(k=3).invoke("What is the Lambda maximum execution time?")
    assert len(docs) == 3
    assert {"file", "heading", "start_line", "end_line", "score"} <= set(docs[0].metadata)


def test_langchain_retriever_takes_k_at_invoke_time(search):
    retriever = search.as_retriever(k=4)
    assert len(retriever.invoke("What is the Lambda maximum execution time?", k=1)) == 1
    assert len(retriever.invoke("What is the Lambda maximum execution time?")) == 4
