"""``study eval`` and ``study bench``: measured quality and speed, written to report files."""

from __future__ import annotations

import argparse
import importlib.util
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from rag.cli import settings_from
from rag.errors import InputError
from rag.evaluation import (
    REPO,
    RETRIEVERS,
    PlainRecipe,
    answer_metrics,
    check_report_name,
    command_line,
    eval_settings,
    fmt,
    load_dataset,
    percentile,
    retrieval_metrics,
    table,
    write_report,
)

DEV_SET = REPO / "evals" / "datasets" / "dev.jsonl"
EXPLAIN_SET = REPO / "evals" / "datasets" / "explain_dev.jsonl"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def answer_backends(settings, requested: str | None) -> list[str]:
    """Extractive always; generators when asked for (or 'all' usable ones)."""
    if not requested:
        return ["extractive"]
    names = [b.strip() for b in requested.split(",") if b.strip()]
    if names == ["all"] and importlib.util.find_spec("rag.generation"):
        from rag.generation import backend_status

        names = [b.name for b in backend_status(settings) if b.usable]
    return names


def run_answers(settings, search, items, backend: str) -> dict:
    from rag.chains import Tutor

    tutor = Tutor(settings.model_copy(update={"backend": backend}), search)
    return {it.id: tutor.ask(it.question) for it in items}


def support_judge(settings, search, kind: str = "verifier"):
    """The support judge: our verifier (default) or an LLM through ollama/openai."""
    if importlib.util.find_spec("rag.verify") is None:
        return None
    if kind == "llm":
        from rag.verify import make_llm_judge

        return make_llm_judge(settings)
    from rag.verify import make_judge

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
    notes = Path(args.notes) if args.notes else base.notes_dir
    settings = eval_settings(base, notes)
    index = NoteIndex(settings)
    index.ingest(settings.notes_dir)
    search = HybridSearch(settings, index)
    items = load_dataset(Path(args.dataset), settings.notes_dir)[::args.every]
    name = check_report_name(args.name or Path(args.dataset).stem)
    judge = support_judge(settings, search, args.judge)  # fails fast if it cannot be built
    data: dict = {"command": command_line(), "dataset": str(args.dataset),
                  "notes": str(settings.notes_dir), "items": len(items),
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
    if EXPLAIN_SET.is_file() and not args.quick and args.notes is None \
            and importlib.util.find_spec("rag.study_eval"):
        from rag import study_eval

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
          f"Notes: `{settings.notes_dir}`", "",
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
    path = write_report(name, data, "\n".join(md))
    print("\n".join(md))
    print(f"Report: {path} (+ .json)")
    return 0


BENCH_QUESTION = "What is the maximum execution time of a Lambda function?"


# Forks the command from a small process: a child forked from this one (models loaded) would
# report this process's peak RSS as its own (Linux keeps the high-water mark across exec).
_LAUNCHER = """
import json, os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump({"wall_s": time.perf_counter() - started, "rc": os.waitstatus_to_exitcode(status),
               "cpu_s": usage.ru_utime + usage.ru_stime,
               "peak_rss_mb": usage.ru_maxrss / 1024}, f)
"""


def _timed_process(cmd: list[str], env: dict, out: Path) -> dict:
    """Run one command as its own process (as a user's shell would): wall seconds, CPU seconds
    (user + system) and peak RSS of that process, from ``wait4`` in a small launcher."""
    import json
    import subprocess
    import sys

    figures = out.with_suffix(".time.json")
    with open(out, "wb") as stdout, open(out.with_suffix(".err"), "wb") as stderr:
        subprocess.run([sys.executable, "-c", _LAUNCHER, str(figures), *cmd], cwd=REPO,
                       env=env, stdout=stdout, stderr=stderr, check=False)
    got = json.loads(figures.read_text()) if figures.is_file() else {"rc": -1}
    if got.pop("rc") != 0:
        tail = out.with_suffix(".err").read_text(errors="replace").strip().splitlines()[-1:]
        raise InputError(f"`{' '.join(cmd[:4])} …` failed: {tail[0] if tail else 'no output'}")
    return got


def whole_process_bench(settings, scratch: Path, runs: int) -> dict:
    """`study ingest` (cold index) and one-shot `study ask`, each a fresh process, against the
    plain recipe (`evals/recipe.py`) timed the same way, interleaved, ``runs`` rounds."""
    import json
    import os
    import sys

    if importlib.util.find_spec("langchain_huggingface") is None:
        raise InputError("study bench needs langchain-huggingface for the plain recipe: "
                         "pip install langchain-huggingface.")
    study = Path(sys.executable).with_name("study")
    study_cmd = [str(study)] if study.is_file() else [sys.executable, "-m", "rag.cli"]
    recipe_cmd = [sys.executable, "-m", "evals.recipe"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDYRAG_")}
    env.update(STUDYRAG_NOTES_DIR=str(settings.notes_dir),
               STUDYRAG_MODEL_CACHE_DIR=str(settings.cache_dir))
    notes = str(settings.notes_dir)

    def ours_index(tag: str) -> dict:
        home = scratch / f"whole-{tag}"
        got = _timed_process([*study_cmd, "ingest", "--json"],
                             {**env, "STUDYRAG_HOME": str(home)}, scratch / f"{tag}.out")
        return got

    def recipe_index(tag: str) -> dict:
        return _timed_process([*recipe_cmd, "index", notes, "--persist",
                               str(scratch / f"recipe-{tag}")], env, scratch / f"r{tag}.out")

    def ours_ask(tag: str) -> dict:
        out = scratch / f"ask{tag}.out"
        got = _timed_process([*study_cmd, "ask", "--json", BENCH_QUESTION],
                             {**env, "STUDYRAG_HOME": str(scratch / "whole-warm")}, out)
        got["backend"] = json.loads(out.read_text()).get("backend")
        return got

    def recipe_query(tag: str) -> dict:
        return _timed_process([*recipe_cmd, "query", BENCH_QUESTION, "--persist",
                               str(scratch / "recipe-warm")], env, scratch / f"rq{tag}.out")

    # Untimed first runs: the page cache holds both models, and both indexes exist to ask.
    ours_index("warm")
    recipe_index("warm")
    rows: dict[str, list[dict]] = {"index": [], "recipe_index": [], "ask": [],
                                   "recipe_query": []}
    for r in range(runs):  # interleaved, alternating who goes first
        pairs = [("index", ours_index), ("recipe_index", recipe_index)]
        asks = [("ask", ours_ask), ("recipe_query", recipe_query)]
        for name, fn in (pairs if r % 2 == 0 else pairs[::-1]) + (
                asks if r % 2 == 0 else asks[::-1]):
            rows[name].append(fn(str(r)))
    med = {name: {key: statistics.median(x[key] for x in got)
                  for key in ("wall_s", "cpu_s", "peak_rss_mb")} for name, got in rows.items()}
    per_run = lambda a, b, key: statistics.median(  # noqa: E731
        x[key] / y[key] for x, y in zip(rows[a], rows[b]))
    return {
        "runs": runs, "question": BENCH_QUESTION,
        "ask_backend": rows["ask"][0].get("backend"),
        "median": med,
        "ask_vs_recipe_query_wall": med["ask"]["wall_s"] / med["recipe_query"]["wall_s"],
        "ask_vs_recipe_query_cpu": med["ask"]["cpu_s"] / med["recipe_query"]["cpu_s"],
        "ask_vs_recipe_query_wall_per_run_median": per_run("ask", "recipe_query", "wall_s"),
        "index_vs_recipe_index_wall": med["index"]["wall_s"] / med["recipe_index"]["wall_s"],
        "index_vs_recipe_index_cpu": med["index"]["cpu_s"] / med["recipe_index"]["cpu_s"],
        "index_vs_recipe_index_wall_per_run_median": per_run("index", "recipe_index", "wall_s"),
        "targets": {
            "ask<=0.4x_recipe_query": med["ask"]["wall_s"] <= 0.4 * med["recipe_query"]["wall_s"],
            "ask_peak_rss<=400MB": med["ask"]["peak_rss_mb"] <= 400,
            "cold_index<=0.5x_recipe": med["index"]["wall_s"] <= 0.5 * med["recipe_index"]["wall_s"],
        },
        "runs_detail": rows,
    }


def machine() -> str:
    import os

    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        model = next(line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        import platform

        model = platform.processor() or platform.machine()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{os.cpu_count()} CPUs, {model}, load average {load:.1f}"


def cmd_bench(args) -> int:
    """Cold/warm index, retrieve and ask latency, peak RSS, against the plain recipe: in this
    process, then as whole processes (`study ingest`, one-shot `study ask` vs the recipe)."""
    import json

    from rag.chains import Tutor
    from rag.config import load_settings
    from rag.embeddings import embedder_for
    from rag.extractive import line_texts
    from rag.index import NoteIndex
    from rag.retrieval import HybridSearch

    base = settings_from(args)
    scratch = Path(tempfile.mkdtemp(prefix="studyrag-bench-"))
    result: dict = {"command": command_line(), "machine": machine()}
    try:
        # A fresh index, but the shared converted-model cache: "cold" means a cold index.
        settings = load_settings(**{**base.model_dump(), "home": scratch,
                                    "model_cache_dir": base.cache_dir,
                                    "backend": "extractive"})
        t0 = time.perf_counter()
        embedder = embedder_for(settings)
        load_s = time.perf_counter() - t0
        result["embedding_backend"] = embedder.backend
        result["embedder_load_s"] = load_s
        if not args.whole_process_only:
            index = NoteIndex(settings, embedder)
            cold = index.ingest(settings.notes_dir)
            # What the cold index spends embedding chunks and embedding every note line.
            chunks = list(index.chunks().values())
            lines = [t for c in chunks for t in line_texts(c)]
            t = time.perf_counter()
            embedder.encode([c.embed_text for c in chunks])
            chunk_embed_s = time.perf_counter() - t
            t = time.perf_counter()
            embedder.encode(lines)
            line_embed_s = time.perf_counter() - t
            warm_times = [index.ingest(settings.notes_dir).seconds for _ in range(3)]
            plain = PlainRecipe(settings)
            plain.build()  # first build loads its torch model; time the second, warm one
            plain_s = plain.build()
            search = HybridSearch(settings, index)
            tutor = Tutor(settings, search)
            questions = [it.question for it in load_dataset(DEV_SET, settings.notes_dir)] \
                if DEV_SET.is_file() else ["What is S3?"]
            search.retrieve(questions[0])
            tutor.ask(questions[0])
            retrieve_ms, ask_ms = [], []
            for q in questions:
                t = time.perf_counter()
                search.retrieve(q)
                retrieve_ms.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                tutor.ask(q)
                ask_ms.append((time.perf_counter() - t) * 1000)
            result.update({
                "files": cold.files, "chunks": cold.chunks, "note_lines": len(lines),
                "cold_index_s": cold.seconds,
                "cold_index_chunk_embedding_s": chunk_embed_s,
                "cold_index_line_embedding_s": line_embed_s,
                "plain_recipe_index_s": plain_s,
                "cold_vs_plain": cold.seconds / plain_s,
                "warm_reindex_s": statistics.median(warm_times),
                "retrieve_p50_ms": percentile(retrieve_ms, 0.5),
                "retrieve_p95_ms": percentile(retrieve_ms, 0.95),
                "ask_extractive_p50_ms": percentile(ask_ms, 0.5),
                "ask_extractive_p95_ms": percentile(ask_ms, 0.95),
                "questions": len(questions),
                "peak_rss_mb": peak_rss_mb(),
            })
        whole = whole_process_bench(settings, scratch, args.runs)
        result["whole_process"] = whole
        result["machine_end"] = machine()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    md = ["# Benchmark (" + time.strftime("%Y-%m-%d %H:%M") + ")", "",
          f"Command: `{result['command']}`", "", f"Machine: {result['machine']} at the start, "
          f"{result['machine_end'].rsplit(', ', 1)[-1]} at the end.", "",
          "## In this process", "", "| metric | value |", "|---|---|",
          *(f"| {k} | {fmt(v)} |" for k, v in result.items()
            if k not in ("command", "machine", "machine_end", "whole_process")), ""]
    m = whole["median"]
    md += [f"## Whole process (median of {whole['runs']} interleaved runs, same run)", "",
           f"`study ingest` of a fresh data folder (cold index) and one-shot `study ask --json "
           f"\"{whole['question']}\"` (answered by: {whole['ask_backend']}), each a new process, "
           "against `python -m evals.recipe index|query` (the plain LangChain recipe: "
           "RecursiveCharacterTextSplitter 1000/200, all-MiniLM-L6-v2 through "
           "langchain-huggingface, Chroma). Both use models already on disk.", "",
           "| process | wall s | CPU s | peak RSS MB |", "|---|---|---|---|",
           *(f"| {name} | {v['wall_s']:.2f} | {v['cpu_s']:.2f} | {v['peak_rss_mb']:.0f} |"
             for name, v in (("study ask (one-shot)", m["ask"]),
                             ("recipe query (one-shot)", m["recipe_query"]),
                             ("study ingest (cold index)", m["index"]),
                             ("recipe index (cold)", m["recipe_index"]))), "",
           "| ratio | wall (medians) | wall (median of per-run) | CPU | target |",
           "|---|---|---|---|---|",
           f"| ask / recipe query | {whole['ask_vs_recipe_query_wall']:.2f} | "
           f"{whole['ask_vs_recipe_query_wall_per_run_median']:.2f} | "
           f"{whole['ask_vs_recipe_query_cpu']:.2f} | ≤ 0.4 |",
           f"| cold index / recipe index | {whole['index_vs_recipe_index_wall']:.2f} | "
           f"{whole['index_vs_recipe_index_wall_per_run_median']:.2f} | "
           f"{whole['index_vs_recipe_index_cpu']:.2f} | ≤ 0.5 |", "",
           f"Targets: {json.dumps(whole['targets'])}", ""]
    path = write_report(args.name or "bench", result, "\n".join(md))
    print("\n".join(md))
    print(f"Report: {path} (+ .json)")
    return 0


VERIFIER_SET = REPO / "evals" / "datasets" / "verifier_pairs.jsonl"


def cmd_eval_verifier(args) -> int:
    """Precision/recall of a support judge on hand-labelled (sentence, passage) pairs: our
    verifier (with its threshold calibration), or ``--judge llm``."""
    from rag.embeddings import embedder_for
    from rag.verify import Verifier, evaluate_judge, evaluate_pairs, load_pairs

    settings = settings_from(args)
    pairs = load_pairs(Path(args.dataset), settings.notes_dir)
    started = time.perf_counter()
    if args.judge == "llm":
        from rag.verify import make_llm_judge

        result = evaluate_judge(make_llm_judge(settings), pairs)
        rows = {f"LLM judge ({settings.backend}, {settings.model})": result["at_threshold"]}
    else:
        threshold = args.threshold if args.threshold is not None else settings.support_threshold
        verifier = Verifier(embedder=embedder_for(settings), threshold=threshold)
        result = evaluate_pairs(verifier, pairs)
        rows = {f"threshold {threshold:g} (setting)": result["at_threshold"],
                f"threshold {result['best_threshold']:g} (best on these pairs)":
                    result["at_best_threshold"],
                "2-fold cross-validated threshold": result["cross_validated"]}
    result["seconds"] = time.perf_counter() - started
    result["command"] = command_line()
    result["dataset"] = str(args.dataset)
    result["judge"] = args.judge
    labelled = sum(bool(p["supported"]) for p in pairs)
    cols = ["precision", "recall", "unsupported_precision", "unsupported_recall", "accuracy",
            "tp", "fp", "fn", "tn"]
    detail = ("| id | kind | label | score | lexical | semantic | reasons |",
              "|---|---|---|---|---|---|---|") if args.judge != "llm" else (
              "| id | kind | label |", "|---|---|---|")
    md = [f"# Support judge: {args.judge} ({time.strftime('%Y-%m-%d %H:%M')})", "",
          f"Command: `{result['command']}`  ",
          f"Pairs: `{args.dataset}` ({len(pairs)}: {labelled} supported, "
          f"{len(pairs) - labelled} unsupported). Each passage is given with the heading path "
          "of its section, as a retrieved passage is.", "",
          "`precision`/`recall` are for the verdict *supported*; `unsupported_*` for the "
          "verdict *unsupported* (the errors the judge must catch).", "",
          table(rows, cols), "",
          "## By kind (share judged correctly)", "",
          "| kind | pairs | correct |", "|---|---|---|",
          *(f"| {k} | {v['n']} | {v['correct'] / v['n']:.2f} |"
            for k, v in result["by_kind"].items()), "",
          "## Misjudged pairs", "", *detail,
          *(_misjudged(r) for r in result["rows"] if r["predicted"] != r["supported"]), ""]
    path = write_report(args.name or ("verifier" if args.judge != "llm" else "llm-judge"),
                        result, "\n".join(md))
    print("\n".join(md))
    print(f"Report: {path} (+ .json)")
    return 0


def _misjudged(row: dict) -> str:
    if "score" not in row:
        return f"| {row['id']} | {row['kind']} | {row['supported']} |"
    return (f"| {row['id']} | {row['kind']} | {row['supported']} | {row['score']:.3f} | "
            f"{row['lexical']:.2f} | {row['semantic']:.2f} | "
            f"{'; '.join(row['reasons'])[:120]} |")


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


def register(sub) -> None:
    p = sub.add_parser("eval-verifier",
                       help="precision/recall of the support verifier on labelled pairs")
    p.add_argument("--dataset", default=str(VERIFIER_SET), help="JSONL of labelled pairs")
    p.add_argument("--threshold", type=float, help="support threshold (default: setting)")
    p.add_argument("--name", type=_report_name, help="report name (default: verifier, or llm-judge)")
    p.add_argument("--judge", choices=["verifier", "llm"], default="verifier",
                   help="judge to measure: our verifier, or an LLM through the configured "
                   "ollama/openai backend")
    p.set_defaults(func=cmd_eval_verifier)

    p = sub.add_parser("eval", help="measure retrieval and answer quality on a dev set")
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

    p = sub.add_parser("bench", help="time indexing, retrieval and answering")
    p.add_argument("--name", type=_report_name, help="report name (default: bench)")
    p.add_argument("--runs", type=int, default=3,
                   help="whole-process runs of each command (medians are reported)")
    p.add_argument("--whole-process-only", action="store_true",
                   help="skip the in-process figures")
    p.set_defaults(func=cmd_bench)
