"""``study bench``: index, retrieve and answer times and peak memory against the plain
LangChain recipe, in one process and as whole processes a user would start."""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rag.errors import InputError

from evals import DATASETS, REPO
from evals.harness import PlainRecipe, load_dataset
from evals.metrics import percentile
from evals.report import command_line, fmt, publish

DEV_SET = DATASETS / "dev.jsonl"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
    if importlib.util.find_spec("langchain_huggingface") is None:
        raise InputError("study bench needs langchain-huggingface for the plain recipe: "
                         "pip install langchain-huggingface.")
    study = Path(sys.executable).with_name("study")
    study_cmd = [str(study)] if study.is_file() else [sys.executable, "-m", "rag.cli"]
    recipe_cmd = [sys.executable, "-m", "evals.recipe"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDYRAG_")}
    env.update(STUDYRAG_STORAGE__NOTES_DIR=str(settings.storage.notes_dir),
               STUDYRAG_STORAGE__MODEL_CACHE_DIR=str(settings.cache_dir))
    notes = str(settings.storage.notes_dir)

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
    from rag.chains import Tutor
    from rag.cli import settings_from
    from rag.embeddings import embedder_for
    from rag.extractive import line_texts
    from rag.index import NoteIndex
    from rag.retrieval import HybridSearch

    base = settings_from(args)
    scratch = Path(tempfile.mkdtemp(prefix="studyrag-bench-"))
    result: dict = {"command": command_line(), "machine": machine()}
    try:
        # A fresh index, but the shared converted-model cache: "cold" means a cold index.
        settings = base.updated(home=scratch, storage={"model_cache_dir": base.cache_dir},
                                answer={"backend": "extractive"})
        t0 = time.perf_counter()
        embedder = embedder_for(settings)
        load_s = time.perf_counter() - t0
        result["embedding_backend"] = embedder.backend
        result["embedding_precision"] = embedder.precision
        result["embedder_load_s"] = load_s
        if not args.whole_process_only:
            index = NoteIndex(settings, embedder)
            cold = index.ingest(settings.storage.notes_dir)
            # What the cold index spends embedding chunks and embedding every note line.
            chunks = list(index.chunks().values())
            lines = [t for c in chunks for t in line_texts(c)]
            t = time.perf_counter()
            embedder.encode([c.embed_text for c in chunks])
            chunk_embed_s = time.perf_counter() - t
            t = time.perf_counter()
            embedder.encode(lines)
            line_embed_s = time.perf_counter() - t
            warm_times = [index.ingest(settings.storage.notes_dir).seconds for _ in range(3)]
            plain = PlainRecipe(settings)
            plain.build()  # first build loads its torch model; time the second, warm one
            plain_s = plain.build()
            search = HybridSearch(settings, index)
            tutor = Tutor(settings, search)
            notes = settings.storage.notes_dir
            questions = [it.question for it in load_dataset(DEV_SET, notes)] \
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
    return publish(args.name or "bench", result, md)
