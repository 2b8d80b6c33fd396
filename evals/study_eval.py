"""Metrics for the study features: explanation accuracy/must-facts and quiz validity.

``study eval`` calls ``run_all``; ``python -m evals.study_eval`` runs it on its own against
the configured index, and ``python -m evals.study_eval --judging [--topics FILE] [--out DIR]
NAME=NOTES_DIR ...`` writes the inputs of the blind judge (``evals/rubric.md``): practice
questions on each subject's topic phrases (``evals/judging/topics.json`` or a held-out list)
and explanations of the exam-style set; ``python -m evals.ab`` mixes two versions' questions.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from rag.errors import StudyragError
from rag.jsonl import read_jsonl

from evals import DATASETS, JUDGING
from evals.harness import eval_settings, split_of
from evals.metrics import must_hits

EXAM_SET = DATASETS / "explain_exam.jsonl"


def _explain_figures(details: list[dict]) -> dict:
    settled = [d for d in details if d["settled"]]
    groups = sum(d["must_total"] for d in details) or 1
    return {
        "items": len(details),
        "settled": len(settled) / len(details) if details else 0.0,
        "right_when_settled": (sum(d["right"] for d in settled) / len(settled)
                               if settled else 0.0),
        "right_overall": (sum(d["right"] for d in details) / len(details)
                          if details else 0.0),
        "must_with_key": sum(d["must"] for d in details) / groups,
        "must_without_key": sum(d["must_blind"] for d in details) / groups,
        "reason_for_chosen": (sum(d["chosen_reason"] for d in details) / len(details)
                              if details else 0.0),
    }


def evaluate_explanations(explainer, rows: list[dict]) -> dict:
    """Explain every item twice: without the key (is the settled verdict right, how often
    does it settle) and with it (must-facts, and whether a cited reason for the chosen option
    is given). Figures per half (``split_of``): thresholds are fitted on "tune" only, so
    "test" is the honest figure."""
    details = []
    for row in rows:
        started = time.perf_counter()
        blind = explainer.explain(row["question"], row["chosen"], None, row.get("options"))
        told = explainer.explain(row["question"], row["chosen"], row.get("correct"),
                                 row.get("options"))
        hits = must_hits(told.explanation, row.get("must", []))
        details.append({
            "id": row.get("id"), "split": split_of(str(row.get("id"))),
            "gold": row.get("correct"), "decided": blind.correct,
            "settled": blind.settled, "confidence": blind.confidence,
            "right": blind.settled and blind.correct == row.get("correct"),
            "must": sum(hits), "must_total": len(hits),
            "must_blind": sum(must_hits(blind.explanation, row.get("must", []))),
            "chosen_reason": any(r.citation for r in told.sections.chosen_fails),
            "seconds": round(time.perf_counter() - started, 2)})
    out = {f"explain_{k}": v for k, v in _explain_figures(details).items()}
    for split in ("tune", "test"):
        part = _explain_figures([d for d in details if d["split"] == split])
        out.update({f"explain_{split}_{k}": v for k, v in part.items()})
    out["explain_p50_s"] = statistics.median(d["seconds"] for d in details) if details else 0.0
    out["explain_details"] = details
    return out


def judged_shares(folder: Path = JUDGING) -> dict:
    """The blind judge's labels (``*_labels.jsonl`` next to the judging inputs), as shares.

    Question labels: ``single_correct``, ``clear``, ``useful``, ``on_topic`` (booleans); good
    = all four. Explanation labels: ``score`` (1-5), ``misleading``, ``chosen_reason``
    ("yes" / "partly" / "no"). Missing files: nothing is reported (no judge has run yet)."""
    out: dict = {}
    quiz, expl = folder / "quiz_labels.jsonl", folder / "explain_labels.jsonl"
    if quiz.is_file():
        rows = [r for _, r in read_jsonl(quiz)]
        keys = ("single_correct", "clear", "useful", "on_topic")
        if rows:
            out["judged_questions"] = len(rows)
            out["judged_questions_good"] = sum(all(r.get(k) for k in keys) for r in rows) / len(rows)
    if expl.is_file():
        rows = [r for _, r in read_jsonl(expl)]
        if rows:
            out["judged_explanations"] = len(rows)
            out["judged_explanation_mean"] = statistics.mean(float(r.get("score", 0)) for r in rows)
            out["judged_misleading"] = sum(bool(r.get("misleading")) for r in rows)
            out["judged_chosen_reason"] = sum(r.get("chosen_reason") in ("yes", "partly")
                                              for r in rows) / len(rows)
    return out


def evaluate_quiz(maker, topics: list[str] | None, n: int = 5) -> dict:
    """Make n questions per topic; re-check every shown question with a fresh validator."""
    from rag.quiz import Validator, list_topics

    topics = topics or [t.name for t in list_topics(maker.index)[:12]]
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
    return [row for _, row in read_jsonl(path, "Explain dataset")]


def run_all(settings, search, explain_set: Path, topics: list[str] | None = None,
            n: int = 5) -> dict:
    from rag.chains import Tutor
    from rag.explain import Explainer
    from rag.quiz import QuizMaker

    tutor = Tutor(settings, search)
    explainer = Explainer(tutor)
    out = evaluate_explanations(explainer, load_rows(explain_set))
    if EXAM_SET.is_file() and Path(explain_set).resolve() != EXAM_SET:
        exam = evaluate_explanations(explainer, load_rows(EXAM_SET))
        out.update({k.replace("explain_", "explain_exam_", 1): v for k, v in exam.items()})
    out.update(evaluate_quiz(QuizMaker(tutor, seed=0), topics, n))
    out.update(judged_shares())
    return out


def quiz_judging_rows(maker, topics: list[str], n: int, subject: str) -> list[dict]:
    """What the blind judge sees per generated question: the topic asked, the question, the
    answer, the explanation and the text of the cited passage."""
    rows = []
    for topic in topics:
        try:
            questions = maker.make(topic, n)
        except StudyragError as exc:
            rows.append({"subject": subject, "topic": topic, "error": str(exc)})
            continue
        for q in questions:
            rows.append({
                "subject": subject, "topic": topic, "id": q.id, "kind": q.source,
                "stem": q.stem, "options": dict(zip("ABCD", q.options)), "answer": q.letter,
                "explanation": q.explanation, "passage": {
                    "location": q.passage.location, "text": q.passage.text}})
    return rows


def explain_judging_rows(explainer, rows: list[dict]) -> list[dict]:
    """What the blind judge sees per explanation (the key given, as a student would)."""
    out = []
    for row in rows:
        e = explainer.explain(row["question"], row["chosen"], row.get("correct"),
                              row.get("options"))
        out.append({
            "id": row.get("id"), "question": e.question, "options": e.options,
            "chosen": e.chosen, "key": row.get("correct"),
            "sections": e.sections.model_dump(), "evidence": [
                ev.model_dump() for ev in e.evidence], "explanation": e.explanation,
            "backend": e.backend, "cited": {
                c.n: {"location": c.passage.location, "text": c.passage.text}
                for c in e.citations}})
    return out


def write_judging_inputs(subjects: dict[str, object], topics: dict[str, list[str]],
                         out_dir: Path, n: int = 6) -> dict[str, int]:
    """``quiz_outputs.jsonl`` over every subject's topic phrases and ``explain_outputs.jsonl``
    over the exam set (on the first subject, whose notes the set was written against)."""
    from rag.chains import Tutor
    from rag.explain import Explainer
    from rag.quiz import QuizMaker

    out_dir.mkdir(parents=True, exist_ok=True)
    quiz_rows: list[dict] = []
    explain_rows: list[dict] = []
    for i, (subject, settings) in enumerate(subjects.items()):
        tutor = Tutor(settings)
        quiz_rows += quiz_judging_rows(QuizMaker(tutor, seed=0), topics.get(subject, []), n,
                                       subject)
        if i == 0 and EXAM_SET.is_file():
            explain_rows = explain_judging_rows(Explainer(tutor), load_rows(EXAM_SET))
    for name, rows in (("quiz_outputs.jsonl", quiz_rows),
                       ("explain_outputs.jsonl", explain_rows)):
        (out_dir / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                                            for r in rows), encoding="utf-8")
    return {"questions": sum("stem" in r for r in quiz_rows),
            "topics": len({r["topic"] for r in quiz_rows if "stem" in r}),
            "explanations": len(explain_rows)}


def main(argv: list[str] | None = None) -> int:
    from rag.config import load_settings
    from rag.retrieval import HybridSearch

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--judging"]:
        # --judging [--topics FILE] [--out DIR] NAME=NOTES_DIR ...: one index per subject
        # under the data folder; the topic phrases per subject from FILE (a held-out list)
        from rag.index import NoteIndex

        base = load_settings()
        options = {"--topics": JUDGING / "topics.json", "--out": JUDGING}
        specs = argv[1:]
        while specs[:1] and specs[0] in options and len(specs) > 1:
            options[specs[0]] = Path(specs[1])
            specs = specs[2:]
        if not options["--topics"].is_file():
            print(f"No topic list at {options['--topics']}.", file=sys.stderr)
            return 2
        subjects = {}
        for spec in specs:
            name, _, folder = spec.partition("=")
            subjects[name] = eval_settings(base, Path(folder))
            NoteIndex(subjects[name]).ingest()
        topics = json.loads(options["--topics"].read_text(encoding="utf-8"))
        print(json.dumps(write_judging_inputs(subjects, topics, options["--out"])))
        return 0
    path = Path(argv[0]) if argv else DATASETS / "explain_dev.jsonl"
    settings = load_settings()
    result = run_all(settings, HybridSearch(settings), path)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
