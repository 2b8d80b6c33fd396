"""Scale benchmark: ingest and retrieve over a synthetic notes folder F times the corpus.

    python -m evals.scale --factor 100                 # embedded (on-disk) Chroma
    python -m evals.scale --factor 100 --chroma-server # a `chroma run` server on localhost

What it does, in one run (so the 1x and Fx numbers share the machine state):

1. Writes a synthetic folder into a temp dir, streamed file by file: the bundled corpus files
   under their own names (so dev-set gold passages stay findable) plus distractor files made
   by recombining corpus sections with varied service names ("S3" -> "Nimbus S3", ...), until
   the folder is about F x the corpus size.
2. Ingests the plain corpus (1x) and then the synthetic folder (Fx), each in its own worker
   process, timing the ingest (model load excluded) and recording that process's peak RSS.
3. Measures index size on disk, retrieve latency p50/p95 over the dev questions and recall@5
   on the dev set (a passage is gold when it is from the gold file and its line span contains
   the quote's line) for both indexes.

Writes evals/reports/scale-<F>x[-server].json and .md; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from evals import DATASETS, REPO, REPORTS
from evals.report import write_report

CORPUS = REPO / "corpus"
DEV = DATASETS / "dev.jsonl"

SERVICES = [
    "S3", "EC2", "RDS", "DynamoDB", "Lambda", "SQS", "SNS", "VPC", "CloudFront", "Route 53",
    "EBS", "EFS", "Kinesis", "Aurora", "IAM", "KMS", "CloudWatch", "CloudTrail", "ECS", "EKS",
    "Redshift", "Glacier", "ElastiCache", "API Gateway", "Step Functions", "Snowball",
    "Storage Gateway", "Direct Connect", "Elastic Beanstalk", "CloudFormation", "Cognito",
    "Athena", "Glue", "EMR", "Fargate", "Organizations", "Transit Gateway", "Global Accelerator",
]
VENDORS = [
    "Nimbus", "Zephyr", "Orion", "Cumulus", "Stratus", "Helix", "Quasar", "Vega", "Lyra",
    "Boreal", "Cobalt", "Sierra", "Tundra", "Pulsar", "Aster", "Nova", "Corvid", "Falcon",
]
_HEADING = re.compile(r"^#{1,6}\s")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- synthetic folder ------------------------------------------------------------------
def corpus_sections() -> list[list[str]]:
    sections: list[list[str]] = []
    for path in sorted(CORPUS.glob("*.md")):
        current: list[str] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if _HEADING.match(line) and current:
                sections.append(current)
                current = []
            current.append(line)
        if current:
            sections.append(current)
    return [s for s in sections if sum(len(x) for x in s) > 80]


def vary(text: str, rng: random.Random) -> str:
    """Swap every known service name for a made-up variant, consistently within a file."""
    mapping = {s: f"{rng.choice(VENDORS)} {s}{rng.choice(['', ' X', ' Pro', ' 2', ' Lite'])}"
               for s in SERVICES}
    pattern = re.compile(r"\b(" + "|".join(re.escape(s) for s in
                                             sorted(SERVICES, key=len, reverse=True)) + r")\b")
    return pattern.sub(lambda m: mapping[m.group(1)], text)


def make_folder(target: Path, factor: float, seed: int = 7, file_kb: int = 120) -> dict:
    """Write the corpus + distractors (streamed: one file in memory at a time)."""
    target.mkdir(parents=True, exist_ok=True)
    base = 0
    for path in sorted(CORPUS.glob("*.md")):
        shutil.copyfile(path, target / path.name)
        base += path.stat().st_size
    goal = int(base * factor)
    sections = corpus_sections()
    rng = random.Random(seed)
    written, n = base, 0
    while written < goal:
        n += 1
        vendor = rng.choice(VENDORS)
        parts = [f"# {vendor} cloud study notes, part {n}", ""]
        size = 0
        budget = min(file_kb * 1000, goal - written)
        while size < budget:
            block = "\n".join(rng.choice(sections))
            parts.append(block)
            parts.append("")
            size += len(block) + 1
        body = vary("\n".join(parts), rng)
        sub = target / f"distractors-{n // 100:02d}"
        sub.mkdir(exist_ok=True)
        data = body.encode("utf-8")
        (sub / f"{vendor.lower()}-notes-{n:04d}.md").write_bytes(data)
        written += len(data)
    return {"bytes": written, "corpus_bytes": base, "distractor_files": n}


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --- gold matching ---------------------------------------------------------------------
def quote_lines(file: str, quote: str, cache: dict) -> list[int]:
    """1-based line numbers of the corpus file whose text contains (part of) the quote."""
    if file not in cache:
        cache[file] = (CORPUS / file).read_text(encoding="utf-8").splitlines()
    lines = cache[file]
    norm = lambda s: " ".join(s.lower().split())  # noqa: E731
    q = norm(quote)
    found = [i for i, line in enumerate(lines, 1) if q and q in norm(line)]
    if found:
        return found
    head = q[:40]
    return [i for i, line in enumerate(lines, 1) if head and head in norm(line)]


def dev_rows() -> list[dict]:
    rows = [json.loads(x) for x in DEV.read_text(encoding="utf-8").splitlines() if x.strip()]
    cache: dict = {}
    for row in rows:
        row["gold_lines"] = [(g["file"], quote_lines(g["file"], g["quote"], cache))
                             for g in row.get("gold", [])]
    return rows


def is_gold(passage: dict, gold_lines) -> bool:
    return any(
        passage["file"] == file and any(passage["start_line"] <= ln <= passage["end_line"]
                                        for ln in lines)
        for file, lines in gold_lines
    )


# --- worker (one process per phase, so peak RSS is per phase) --------------------------
def settings_for(args):
    from rag.config import load_settings

    return load_settings(home=args.home, embedding={"backend": args.embedding_backend},
                         storage={"notes_dir": args.notes, "chroma_host": args.chroma_host,
                                  "chroma_port": args.chroma_port, "collection": args.collection})


def worker_ingest(args) -> dict:
    from rag.embeddings import embedder_for
    from rag.index import NoteIndex

    settings = settings_for(args)
    t0 = time.perf_counter()
    embedder = embedder_for(settings)
    embedder.encode(["warm up"])
    load_s = time.perf_counter() - t0
    index = NoteIndex(settings, embedder=embedder)
    started = time.perf_counter()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)

    def progress(i: int, total: int, name: str) -> None:
        if i % 25 == 0 or i == total:
            log(f"  ingest {i}/{total} files, {time.perf_counter() - started:.0f} s")

    report = index.ingest(Path(args.notes), progress=progress)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {
        "ingest_cpu_s": cpu_s,
        "files": report.files, "chunks": report.chunks, "skipped": len(report.skipped),
        "ingest_s": report.seconds, "model_load_s": load_s,
        "chunks_per_s": report.chunks / report.seconds if report.seconds else 0.0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def worker_query(args) -> dict:
    from rag.retrieval import HybridSearch

    settings = settings_for(args)
    search = HybridSearch(settings)
    rows = dev_rows()
    for row in rows[:3]:  # warm up: model, BM25 cache, HNSW pages
        search.retrieve(row["question"], k=5)
    times, hits, answerable = [], 0, 0
    for row in rows:
        t = time.perf_counter()
        passages = [p.model_dump() for p in search.retrieve(row["question"], k=5)]
        times.append((time.perf_counter() - t) * 1000)
        if row.get("answerable") and row["gold_lines"]:
            answerable += 1
            hits += any(is_gold(p, row["gold_lines"]) for p in passages)
    times.sort()
    return {
        "questions": len(rows), "answerable": answerable, "recall_at_5": hits / answerable,
        "retrieve_p50_ms": statistics.median(times),
        "retrieve_p95_ms": times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_worker(phase: str, home: Path, notes: Path, opts, server: tuple | None) -> dict:
    cmd = [sys.executable, "-m", "evals.scale", "--worker", phase, "--home", str(home),
           "--notes", str(notes), "--embedding-backend", opts.embedding_backend,
           "--collection", opts.collection]
    if server:
        cmd += ["--chroma-host", server[0], "--chroma-port", str(server[1])]
    out = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- Chroma server ---------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(path: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    chroma = Path(sys.executable).with_name("chroma")
    proc = subprocess.Popen([str(chroma), "run", "--path", str(path), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, port
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("chroma run did not start")


# --- orchestration ---------------------------------------------------------------------
def bench(opts) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="studyrag-scale-", dir=opts.tmp))
    result: dict = {"factor": opts.factor, "embedding_backend": opts.embedding_backend,
                    "server": opts.chroma_server, "cpus": os.cpu_count()}
    try:
        log(f"writing the {opts.factor}x folder into {tmp}")
        t = time.perf_counter()
        folder = tmp / "notes"
        result["folder"] = make_folder(folder, opts.factor)
        result["folder"]["write_s"] = time.perf_counter() - t
        log(f"  {result['folder']['bytes'] / 1e6:.1f} MB, "
            f"{result['folder']['distractor_files']} distractor files")
        for label, notes in (("1x", CORPUS), (f"{opts.factor:g}x", folder)):
            home = tmp / f"home-{label}"
            home.mkdir()
            (tmp / "cache").mkdir(exist_ok=True)
            (home / "cache").symlink_to(tmp / "cache")  # export the ONNX model only once
            server = proc = None
            if opts.chroma_server:
                proc, port = start_server(tmp / f"chroma-{label}")
                server = ("127.0.0.1", port)
            try:
                log(f"ingest {label}")
                ingest = run_worker("ingest", home, notes, opts, server)
                log(f"  {ingest['chunks']} chunks in {ingest['ingest_s']:.1f} s "
                    f"({ingest['chunks_per_s']:.1f} chunks/s), peak RSS "
                    f"{ingest['peak_rss_mb']:.0f} MB")
                log(f"query {label}")
                query = run_worker("query", home, notes, opts, server)
                log(f"  p50 {query['retrieve_p50_ms']:.1f} ms, p95 "
                    f"{query['retrieve_p95_ms']:.1f} ms, recall@5 {query['recall_at_5']:.3f}")
                size = dir_size(home / "index") + (
                    dir_size(tmp / f"chroma-{label}") if opts.chroma_server else 0)
                result[label] = {"ingest": ingest, "query": query, "index_mb": size / 1e6}
            finally:
                if proc is not None:
                    proc.terminate()
                    proc.wait(timeout=30)
        one, big = result["1x"], result[f"{opts.factor:g}x"]
        per_chunk = lambda r: r["ingest"]["ingest_s"] / max(r["ingest"]["chunks"], 1)  # noqa
        result["per_chunk_cost_ratio"] = per_chunk(big) / per_chunk(one)
        cpu_chunk = lambda r: r["ingest"]["ingest_cpu_s"] / max(r["ingest"]["chunks"], 1)  # noqa
        result["per_chunk_cpu_ratio"] = cpu_chunk(big) / cpu_chunk(one)
        result["load_average_end"] = os.getloadavg()
        result["targets"] = {
            "per_chunk_cost_ratio<=1.2": result["per_chunk_cost_ratio"] <= 1.2,
            "retrieve_p50<=100ms": big["query"]["retrieve_p50_ms"] <= 100,
        }
    finally:
        if not opts.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return result


def markdown(r: dict) -> str:
    big_label = f"{r['factor']:g}x"
    rows = []
    for label in ("1x", big_label):
        x = r[label]
        rows.append(
            f"| {label} | {x['ingest']['files']} | {x['ingest']['chunks']} | "
            f"{x['ingest']['ingest_s']:.1f} | {x['ingest']['ingest_cpu_s']:.1f} | "
            f"{x['ingest']['chunks_per_s']:.1f} | "
            f"{x['index_mb']:.1f} | {x['ingest']['peak_rss_mb']:.0f} / "
            f"{x['query']['peak_rss_mb']:.0f} | {x['query']['retrieve_p50_ms']:.1f} | "
            f"{x['query']['retrieve_p95_ms']:.1f} | {x['query']['recall_at_5']:.3f} |")
    mode = "Chroma server (`chroma run`, localhost)" if r["server"] else "embedded Chroma"
    return "\n".join([
        f"# Scale benchmark: {big_label} ({mode}, {r['embedding_backend']} embeddings, "
        f"{r['cpus']} CPUs)",
        "",
        f"Synthetic folder: {r['folder']['bytes'] / 1e6:.1f} MB "
        f"({r['folder']['distractor_files']} distractor files + the corpus).",
        "",
        "| run | files | chunks | ingest s (wall) | ingest CPU s | chunks/s | index MB | peak RSS MB (ingest / "
        "query) | retrieve p50 ms | p95 ms | recall@5 (dev) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Per-chunk ingest cost {big_label} / 1x: **{r['per_chunk_cost_ratio']:.2f}** "
        f"(target <= 1.2); in CPU seconds: **{r['per_chunk_cpu_ratio']:.2f}** (less "
        f"sensitive to other load on the machine; load average at the end "
        f"{r['load_average_end'][0]:.1f}).",
        "",
    ])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.scale", description=__doc__.split("\n")[0])
    p.add_argument("--factor", type=float, default=100)
    p.add_argument("--chroma-server", action="store_true", help="benchmark a `chroma run`")
    p.add_argument("--embedding-backend", choices=["torch", "onnx"],
                   default=os.environ.get("STUDYRAG_EMBEDDING__BACKEND", "onnx"))  # the app default
    p.add_argument("--collection", default="notes")
    p.add_argument("--tmp", default=None, help="where to write the temp folder")
    p.add_argument("--keep", action="store_true", help="keep the temp folder")
    p.add_argument("--out", default=None, help="report basename (default scale-<F>x)")
    # worker mode (internal)
    p.add_argument("--worker", choices=["ingest", "query"], help=argparse.SUPPRESS)
    p.add_argument("--home", help=argparse.SUPPRESS)
    p.add_argument("--notes", help=argparse.SUPPRESS)
    p.add_argument("--chroma-host", help=argparse.SUPPRESS)
    p.add_argument("--chroma-port", type=int, help=argparse.SUPPRESS)
    opts = p.parse_args(argv)
    if opts.worker:
        from rag.cli import quiet_libraries

        quiet_libraries()
        fn = worker_ingest if opts.worker == "ingest" else worker_query
        print(json.dumps(fn(opts)), flush=True)
        return 0
    result = bench(opts)
    name = opts.out or f"scale-{opts.factor:g}x" + ("-server" if opts.chroma_server else "")
    write_report(name, result, markdown(result), REPORTS, dated=False)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
