"""Retrieval and answer metrics of ``study eval``.

A retrieved passage counts as gold when it is from the gold file and its line span overlaps
the lines of the gold quote.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from pathlib import Path

from rag.citations import strip_citations
from rag.models import Passage
from rag.verify import with_heading

from evals.harness import Gold, Item


def is_gold(passage: Passage, gold: Gold) -> bool:
    return (Path(passage.file).name == Path(gold.file).name
            and passage.start_line <= gold.end and passage.end_line >= gold.start)


def retrieval_metrics(items: list[Item], ranked: dict[str, list[Passage]]) -> dict:
    """recall@1/5/10, all-gold@5/10 (multi-gold questions), MRR, nDCG@10."""
    answerable = [it for it in items if it.gold]
    multi = [it for it in answerable if len(it.gold) > 1]
    out: dict[str, float] = {}
    for k in (1, 5, 10):
        out[f"recall@{k}"] = statistics.mean(
            any(is_gold(p, g) for p in ranked[it.id][:k] for g in it.gold) for it in answerable)
    for k in (5, 10):
        out[f"all_gold@{k}"] = statistics.mean(
            all(any(is_gold(p, g) for p in ranked[it.id][:k]) for g in it.gold)
            for it in multi) if multi else float("nan")
    rr, ndcg = [], []
    for it in answerable:
        passages = ranked[it.id]
        first = next((i for i, p in enumerate(passages, 1)
                      if any(is_gold(p, g) for g in it.gold)), None)
        rr.append(1.0 / first if first else 0.0)
        found: set[int] = set()
        dcg = 0.0
        for i, p in enumerate(passages[:10], 1):
            new = [j for j, g in enumerate(it.gold) if j not in found and is_gold(p, g)]
            if new:
                found.update(new)
                dcg += 1.0 / math.log2(i + 1)
        ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(it.gold), 10) + 1))
        ndcg.append(dcg / ideal)
    out["mrr"] = statistics.mean(rr)
    out["ndcg@10"] = statistics.mean(ndcg)
    out["questions"] = len(answerable)
    out["multi_gold_questions"] = len(multi)
    return out



def must_hits(text: str, must: list[list[str]]) -> list[bool]:
    """Per fact group: is any of its alternatives in ``text`` (case-insensitive)?"""
    low = text.lower()
    return [any(alt.lower() in low for alt in group) for group in must]


def must_score(answer: str, must: list[list[str]]) -> tuple[bool, float]:
    """All fact groups present, and the share present."""
    if not must:
        return True, 1.0
    hits = must_hits(answer, must)
    return all(hits), sum(hits) / len(hits)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def answer_metrics(items: list[Item], answers: dict[str, object],
                   judge: Callable | None = None) -> dict:
    """Must-fact correctness, abstention, length, latency (+ faithfulness with a judge)."""
    answerable = [it for it in items if it.answerable]
    unanswerable = [it for it in items if not it.answerable]
    correct, partial, words = [], [], []
    for it in answerable:
        a = answers[it.id]
        ok, frac = must_score("" if a.abstained else a.answer, it.must)
        correct.append(ok)
        partial.append(frac)
        if not a.abstained:
            words.append(len(strip_citations(a.answer).split()))
    latencies = [answers[it.id].latency_ms for it in items]
    out = {
        "must_correct": statistics.mean(correct) if correct else float("nan"),
        "must_groups": statistics.mean(partial) if partial else float("nan"),
        "abstention": statistics.mean(answers[it.id].abstained for it in unanswerable)
        if unanswerable else float("nan"),
        "false_abstention": statistics.mean(answers[it.id].abstained for it in answerable)
        if answerable else float("nan"),
        "median_words": statistics.median(words) if words else 0,
        "latency_p50_ms": percentile(latencies, 0.5),
        "latency_p95_ms": percentile(latencies, 0.95),
    }
    ttft = [answers[it.id].ttft_ms for it in items if answers[it.id].ttft_ms is not None]
    tps = [answers[it.id].tokens_per_s for it in items if answers[it.id].tokens_per_s]
    if ttft:
        out["ttft_p50_ms"] = percentile(ttft, 0.5)
    if tps:
        out["tokens_per_s"] = statistics.mean(tps)
    if judge is not None:
        out.update(citation_metrics([answers[it.id] for it in items], judge))
    return out


def _evidence(passage: Passage) -> str:
    """A cited passage as the judge sees it: heading path, then text (as the chain does)."""
    return with_heading(passage.heading, passage.text)


def citation_metrics(answers: list, judge: Callable) -> dict:
    """RAGAS faithfulness and ALCE citation recall/precision with a support judge.

    ``judge(sentence, [passage_text, ...]) -> bool``: do these passages together support it?
    A citation is precise when the joint citations support the sentence and it is not
    irrelevant (irrelevant = unsupported alone while the others still support without it).
    """
    sentences = supported = precise = cites = 0
    for a in answers:
        if a.abstained:
            continue
        by_n = {c.n: _evidence(c.passage) for c in a.citations}
        for s in a.sentences:
            if not s.supported and "(unsupported)" not in a.answer:
                continue  # dropped by the verifier: not part of the shown answer
            sentences += 1
            texts = [by_n[n] for n in s.citations if n in by_n]
            joint = bool(texts) and len(texts) == len(s.citations) and judge(s.text, texts)
            supported += joint
            cites += len(s.citations)
            if not joint:
                continue
            for n in s.citations:
                others = [by_n[m] for m in s.citations if m != n]
                irrelevant = not judge(s.text, [by_n[n]]) and bool(others) and judge(
                    s.text, others)
                precise += not irrelevant
    nan = float("nan")
    return {
        "faithfulness": supported / sentences if sentences else nan,
        "citation_recall": supported / sentences if sentences else nan,
        "citation_precision": precise / cites if cites else nan,
        "judged_sentences": sentences,
    }
