"""The options and bodies of ``study eval``, ``study eval-verifier`` and ``study bench``
(``rag.cli`` names the commands and fills them in from ``register``), and ``study eval``:
retrieval and answer quality on a dev set, written to a report."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rag.cli import settings_from
from rag.errors import InputError

from evals import DATASETS, study_eval
from evals.bench import cmd_bench
from evals.harness import RETRIEVERS, PlainRecipe, eval_settings, load_dataset
from evals.metrics import answer_metrics, percentile, retrieval_metrics
from evals.report import check_report_name, command_line, fmt, publish, table
from evals.verifier_eval import VERIFIER_SET, cmd_eval_verifier, make_judge, make_llm_judge

DEV_SET = DATASETS / "dev.jsonl"
EXPLAIN_SET = DATASETS / "explain_dev.jsonl"


def answer_backends(settings, requested: str | None) -> list[str]:
    """Extractive always; generators when asked for (or 'all' usable ones)."""
    if not requested:
        return ["extractive"]
    names = [b.strip() for b in requested.split(",") if b.strip()]
    if names == ["all"]:
        from rag.generation import backend_status

        names = [b.name for b in backend_status(settings) if b.usable]
    return names


def run_answers(settings, search, items, backend: str) -> dict:
    from rag.chains import Tutor

    tutor = Tutor(settings.updated(answer={"backend": backend}), search)
    return {it.id: tutor.ask(it.question) for it in items}


def support_judge(settings, search, kind: str = "verifier"):
    """The support judge: our verifier (default) or an LLM through ollama/openai."""
    if kind == "llm":
        return make_llm_judge(settings)
    return make_judge(settings, search.index.embedder)


SPLITS = ("tune", "test")


def by_split(items, metric) -> dict:
    """``metric(items)`` on the tune half, the test half and all items, plus the gap."""
    out = {split: metric([it for it in items if it.split == split]) for split in SPLITS}
    out["all"] = metric(items)
    return out


def top_passage_answers(items, ranked: dict[str, list]) -> dict:
    """A baseline: a retriever's first passage shown unchanged as the answer (what the plain
    recipe shows a user); it never abstains."""
    from rag.models import Answer

    return {it.id: Answer(question=it.question, answer=ranked[it.id][0].text
                          if ranked[it.id] else "", abstained=not ranked[it.id])
            for it in items}


def cmd_eval(args) -> int:
    from rag.index import NoteIndex
    from rag.retrieval import HybridSearch

    base = settings_from(args)
    notes = Path(args.notes) if args.notes else base.storage.notes_dir
    settings = eval_settings(base, notes)
    items = load_dataset(Path(args.dataset), settings.storage.notes_dir)[::args.every]
    name = check_report_name(args.name or Path(args.dataset).stem)
    index = NoteIndex(settings)
    index.ingest(settings.storage.notes_dir)
    search = HybridSearch(settings, index)
    judge = support_judge(settings, search, args.judge)  # fails fast if it cannot be built
    data: dict = {"command": command_line(), "dataset": str(args.dataset),
                  "notes": str(settings.storage.notes_dir), "items": len(items),
                  "split_sizes": {s: sum(it.split == s for it in items) for s in SPLITS},
                  "settings": {k: str(v) for k, v in settings.model_dump().items()
                               if k not in ("openai_api_key",)}, "judge": args.judge}

    ranked: dict[str, dict] = {}
    timings: dict[str, list[float]] = {}
    plain = PlainRecipe(settings)
    data["plain_index_s"] = plain.build()
    for retriever in RETRIEVERS:
        ranked[retriever], timings[retriever] = {}, []
        for it in items:
            t0 = time.perf_counter()
            if retriever == "plain":
                passages = plain.retrieve(it.question, 10)
            else:
                passages = search.retrieve(it.question, k=10, mode=retriever)
            timings[retriever].append((time.perf_counter() - t0) * 1000)
            ranked[retriever][it.id] = passages
    retrieval = {r: by_split(items, lambda part, r=r: {
        **retrieval_metrics(part, ranked[r]), "p50_ms": percentile(
            [t for it, t in zip(items, timings[r]) if it in part], 0.5)})
        for r in RETRIEVERS}
    data["retrieval"] = retrieval

    answers, details = {}, {}
    runs = {"plain top passage": (None, top_passage_answers(items, ranked["plain"])),
            "hybrid top passage": (None, top_passage_answers(items, ranked["hybrid"]))}
    for backend in answer_backends(settings, args.backends):
        runs[f"studyrag {backend}"] = (backend, None)
    for label, (backend, system) in runs.items():
        started = time.perf_counter()
        got = system if system is not None else run_answers(settings, search, items, backend)
        use_judge = judge if backend else None
        answers[label] = by_split(items, lambda part, got=got, j=use_judge: answer_metrics(
            part, got, j))
        answers[label]["all"]["fell_back"] = sum(a.fell_back for a in got.values())
        answers[label]["all"]["seconds"] = time.perf_counter() - started
        if backend:
            details[label] = {i: {"answer": a.answer, "abstained": a.abstained,
                                  "backend": a.backend, "fell_back": a.fell_back,
                                  "ttft_ms": a.ttft_ms, "tokens_per_s": a.tokens_per_s,
                                  "sentences": [s.model_dump() for s in a.sentences]}
                              for i, a in got.items()}
    data["answers"] = answers
    data["answer_details"] = details

    study = {}
    if EXPLAIN_SET.is_file() and not args.quick and args.notes is None:
        study = study_eval.run_all(settings, search, EXPLAIN_SET)
        data["study"] = study

    def split_rows(results: dict) -> dict:
        rows = {}
        for label, parts in results.items():
            for split in SPLITS:
                rows[f"{label} · {split}"] = parts[split]
        return rows

    def gap_rows(results: dict, metric: str) -> str:
        lines = [f"| system | {metric} tune | {metric} test | gap (tune − test) |",
                 "|---|---|---|---|"]
        for label, parts in results.items():
            t, s = parts["tune"].get(metric), parts["test"].get(metric)
            if isinstance(t, float) and isinstance(s, float):
                lines.append(f"| {label} | {fmt(t)} | {fmt(s)} | {t - s:+.3f} |")
        return "\n".join(lines)

    sizes = data["split_sizes"]
    md = [f"# Eval: {name} ({time.strftime('%Y-%m-%d %H:%M')})", "",
          f"Command: `{data['command']}`  ",
          f"Dataset: `{args.dataset}` ({len(items)} questions, "
          f"{sum(1 for i in items if not i.answerable)} unanswerable, "
          f"{sum(1 for i in items if len(i.gold) > 1)} need two passages; "
          f"tune half {sizes['tune']}, test half {sizes['test']}, split by a hash of the id)  ",
          f"Notes: `{settings.storage.notes_dir}`", "",
          "Parameters are fitted on tune halves only (`evals/tune_answers.py`); the test half "
          "is the honest figure and the gap is its error bar.", "",
          "## Retrieval (k = 10 candidates)", "",
          table(split_rows(retrieval), ["recall@1", "recall@5", "recall@10", "all_gold@5",
                                        "all_gold@10", "mrr", "ndcg@10", "p50_ms"]),
          "`plain` = LangChain recipe (RecursiveCharacterTextSplitter 1000/200 + MiniLM + "
          f"Chroma top-k; indexed in {data['plain_index_s']:.1f} s in this run).", "",
          gap_rows(retrieval, "mrr"), "",
          "## Answers", "",
          table(split_rows(answers), ["must_correct", "must_groups", "abstention",
                                      "false_abstention", "median_words", "faithfulness",
                                      "citation_precision", "latency_p50_ms", "ttft_p50_ms"]),
          "`plain top passage` / `hybrid top passage`: that retriever's first passage shown "
          "unchanged as the answer (never abstains).", "",
          gap_rows(answers, "must_correct"), "",
          f"Support judge: {data['judge']} (faithfulness / citation metrics). With the default "
          "judge (our verifier) a generated sentence that survived the support check passes by "
          "construction; `study eval-verifier` measures the verifier itself.", ""]
    if study:
        md += ["## Study features", "", "```", *(f"{k}: {fmt(v)}" for k, v in study.items()
                                                 if not isinstance(v, (list, dict))), "```", ""]
    return publish(name, data, md)


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value!r}")
    return int(value)


def _report_name(value: str) -> str:
    """Checked before a long run starts, not when its report is written."""
    try:
        return check_report_name(value)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(parsers: dict[str, argparse.ArgumentParser]) -> None:
    """Options and bodies for the sub-commands ``rag.cli`` created, by name."""
    p = parsers["eval-verifier"]
    p.add_argument("--dataset", default=str(VERIFIER_SET), help="JSONL of labelled pairs")
    p.add_argument("--threshold", type=float, help="support threshold (default: setting)")
    p.add_argument("--name", type=_report_name, help="report name (default: verifier, or llm-judge)")
    p.add_argument("--judge", choices=["verifier", "llm"], default="verifier",
                   help="judge to measure: our verifier, or an LLM through the configured "
                   "ollama/openai backend")
    p.set_defaults(func=cmd_eval_verifier)

    p = parsers["eval"]
    p.add_argument("--dataset", default=str(DEV_SET), help="JSONL dev set")
    p.add_argument("--notes", help="notes folder the dataset was written on (default: the "
                   "configured notes folder); indexed separately, your index is untouched")
    p.add_argument("--name", type=_report_name, help="report name (default: the dataset's name)")
    p.add_argument("--backends", help="answer backends to compare, e.g. extractive,embedded "
                   "or 'all' usable (default: extractive)")
    p.add_argument("--quick", action="store_true", help="skip the explain/quiz evaluation")
    p.add_argument("--every", type=_positive_int, default=1, metavar="K",
                   help="only every K-th question (a quick, deterministic subset for slow "
                   "backends; default: all)")
    p.add_argument("--judge", choices=["verifier", "llm"], default="verifier",
                   help="support judge for faithfulness/citations: our verifier, or an LLM "
                   "through the configured ollama/openai backend")
    p.set_defaults(func=cmd_eval)

    p = parsers["bench"]
    p.add_argument("--name", type=_report_name, help="report name (default: bench)")
    p.add_argument("--runs", type=int, default=3,
                   help="whole-process runs of each command (medians are reported)")
    p.add_argument("--whole-process-only", action="store_true",
                   help="skip the in-process figures")
    p.set_defaults(func=cmd_bench)
