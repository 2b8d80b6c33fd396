"""Metrics for the study features: explanation accuracy/must-facts and quiz validity.

``rag.evaluation`` (``study eval``) calls ``run_all``; ``python -m rag.study_eval`` runs it
on its own against the configured index.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

DEFAULT_TOPICS = ["S3", "EC2", "Lambda", "RDS", "VPC", "DynamoDB", "IAM", "CloudFront", "ECS",
                  "KMS", "Route 53", "EBS"]


def must_hits(text: str, must: list[list[str]]) -> list[bool]:
    low = text.lower()
    return [any(alt.lower() in low for alt in group) for group in must]


def evaluate_explanations(explainer, rows: list[dict]) -> dict:
    """Decide the correct option without being told it; score it and the must-facts.

    ``correct_accuracy`` counts only items the explainer settled (the target); ``coverage``
    is the share it settled; must-facts are checked on the explanation written with the
    correct option given (the normal use: the student knows the answer key).
    """
    details = []
    for row in rows:
        started = time.perf_counter()
        blind = explainer.explain(row["question"], row["chosen"], None, row.get("options"))
        told = explainer.explain(row["question"], row["chosen"], row.get("correct"),
                                 row.get("options"))
        hits = must_hits(told.explanation, row.get("must", []))
        details.append({
            "id": row.get("id"), "gold": row.get("correct"), "decided": blind.correct,
            "settled": blind.settled, "confidence": blind.confidence,
            "right": blind.correct == row.get("correct"),
            "must": sum(hits), "must_total": len(hits),
            "must_blind": sum(must_hits(blind.explanation, row.get("must", []))),
            "seconds": round(time.perf_counter() - started, 2)})
    settled = [d for d in details if d["settled"]]
    groups = sum(d["must_total"] for d in details) or 1
    return {
        "explain_items": len(details),
        "explain_settled": len(settled) / len(details) if details else 0.0,
        "explain_correct_accuracy": (sum(d["right"] for d in settled) / len(settled)
                                     if settled else 0.0),
        "explain_correct_overall": (sum(d["right"] for d in details) / len(details)
                                    if details else 0.0),
        "explain_must_coverage": sum(d["must"] for d in details) / groups,
        "explain_must_coverage_blind": sum(d["must_blind"] for d in details) / groups,
        "explain_p50_s": statistics.median(d["seconds"] for d in details) if details else 0.0,
        "explain_details": details,
    }


def evaluate_quiz(maker, topics: list[str], n: int = 5) -> dict:
    """Make n questions per topic; re-check every shown question with a fresh validator."""
    from rag.quiz import Validator

    checker = Validator(maker.index.embedder)
    shown = valid = 0
    per_topic = {}
    for topic in topics:
        try:
            questions = maker.make(topic, n)
        except Exception as exc:  # a topic with too little material counts as zero questions
            per_topic[topic] = {"questions": 0, "error": str(exc)}
            continue
        ok = [not checker.validate(q) for q in questions]
        shown += len(questions)
        valid += sum(ok)
        per_topic[topic] = {"questions": len(questions), "valid": sum(ok),
                            "sources": [q.source for q in questions]}
    return {
        "quiz_topics": len(topics),
        "quiz_questions": shown,
        "quiz_validity": valid / shown if shown else 0.0,
        "quiz_candidate_acceptance": maker.stats.validity_rate,
        "quiz_rejected": maker.stats.rejected,
        "quiz_details": per_topic,
    }


def load_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()
            if line.strip()]


def run_all(settings, search, explain_set: Path, topics: list[str] | None = None,
            n: int = 5) -> dict:
    from rag.chains import Tutor
    from rag.explain import Explainer
    from rag.quiz import QuizMaker

    tutor = Tutor(settings, search)
    out = evaluate_explanations(Explainer(tutor), load_rows(explain_set))
    out.update(evaluate_quiz(QuizMaker(tutor, seed=0), topics or DEFAULT_TOPICS, n))
    return out


def main(argv: list[str] | None = None) -> int:
    from rag.config import load_settings
    from rag.retrieval import HybridSearch

    argv = list(sys.argv[1:] if argv is None else argv)
    path = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / \
        "evals" / "datasets" / "explain_dev.jsonl"
    settings = load_settings()
    result = run_all(settings, HybridSearch(settings), path)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
