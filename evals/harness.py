"""The eval harness: retrieval quality (4 retrievers side by side) and answer quality.

A retrieved passage counts as gold when it is from the gold file and its line span overlaps
the lines of the gold quote. Reports go to ``evals/reports/<date>-<name>.{md,json}``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.config import Settings
from rag.errors import InputError
from rag.jsonl import read_jsonl
from rag.models import Passage

REPO = Path(__file__).resolve().parent.parent
REPORTS = REPO / "evals" / "reports"
RETRIEVERS = ("plain", "bm25", "dense", "hybrid")


@dataclass
class Gold:
    file: str
    start: int
    end: int


def split_of(item_id: str) -> str:
    """The fixed half of an item, by a hash of its id: parameters are fitted on "tune" only
    (the same rule as ``evals/datasets/check_datasets.py``)."""
    return "tune" if hashlib.sha1(item_id.encode()).digest()[0] % 2 == 0 else "test"


@dataclass
class Item:
    id: str
    question: str
    answerable: bool
    gold: list[Gold]
    must: list[list[str]]

    @property
    def split(self) -> str:
        return split_of(self.id)


def eval_settings(settings: Settings, notes_dir: Path) -> Settings:
    """Settings for evaluating on a notes folder: its own index under the data folder (the
    student's index is never touched), the shared converted-model cache."""
    notes_dir = Path(notes_dir).expanduser().resolve()
    if not notes_dir.is_dir():
        raise InputError(f"Notes folder {notes_dir} does not exist.")
    key = hashlib.sha1(str(notes_dir).encode()).hexdigest()[:10]
    return settings.model_copy(update={
        "notes_dir": notes_dir, "home": settings.home / "eval" / f"{notes_dir.name}-{key}",
        "model_cache_dir": settings.cache_dir})


def locate_quote(notes_dir: Path, file: str, quote: str) -> Gold:
    """Line span (1-based) of a verbatim quote in a note file."""
    path = notes_dir / file
    if not path.is_file():
        raise InputError(f"Gold file {file} is not in {notes_dir}.")
    text = path.read_text(encoding="utf-8", errors="replace")
    pos = text.find(quote)
    if pos < 0:
        squashed = " ".join(quote.split())
        pos = text.find(squashed)
        if pos < 0:
            raise InputError(f"Gold quote not found verbatim in {file}: {quote[:60]!r}")
        quote = squashed
    start = text.count("\n", 0, pos) + 1
    return Gold(file, start, start + quote.count("\n"))


def load_dataset(path: Path, notes_dir: Path) -> list[Item]:
    """Read a JSONL dev set ({id, question, answerable, gold:[{file, quote}], must})."""
    items = []
    for number, row in read_jsonl(path, "Dataset"):
        try:
            items.append(Item(
                id=str(row["id"]), question=row["question"],
                answerable=bool(row.get("answerable", bool(row.get("gold")))),
                gold=[locate_quote(notes_dir, g["file"], g["quote"]) for g in row.get("gold", [])],
                must=[list(group) for group in row.get("must", [])],
            ))
        except (KeyError, TypeError) as exc:
            raise InputError(f"{path}:{number}: not a dev-set row ({exc}).") from None
    return items


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


class PlainRecipe:
    """The LangChain tutorial baseline: RecursiveCharacterTextSplitter 1000/200 + MiniLM +
    Chroma top-k, on the raw files (no headings, no BM25)."""

    def __init__(self, settings: Settings):
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        from rag.embeddings import get_embedder

        # What the tutorial uses: sentence-transformers on torch, its default 256 tokens.
        self.embedder = get_embedder(settings.embedding_model, "torch", "", 32, 256)
        self.splitter = RecursiveCharacterTextSplitter(
            chunk_size=1000, chunk_overlap=200, add_start_index=True)
        self.settings = settings
        self.store = None

    def build(self) -> float:
        import chromadb
        from chromadb.config import Settings as ChromaSettings
        from langchain_chroma import Chroma
        from langchain_core.documents import Document

        started = time.perf_counter()
        docs = []
        for path in sorted(Path(self.settings.notes_dir).rglob("*")):
            if path.suffix.lower() in (".md", ".txt", ".markdown") and path.is_file():
                text = path.read_text(encoding="utf-8", errors="replace")
                docs.append(Document(page_content=text, metadata={
                    "file": path.relative_to(self.settings.notes_dir).as_posix(), "full": text}))
        chunks = self.splitter.split_documents(docs)
        for c in chunks:
            full = c.metadata.pop("full")
            start = c.metadata["start_index"]
            c.metadata["start_line"] = full.count("\n", 0, start) + 1
            c.metadata["end_line"] = full.count("\n", 0, start + len(c.page_content)) + 1
        client = chromadb.EphemeralClient(ChromaSettings(anonymized_telemetry=False))
        self.store = Chroma(client=client, collection_name=f"plain{time.time_ns()}",
                            embedding_function=self.embedder)
        self.store.add_documents(chunks)
        return time.perf_counter() - started

    def retrieve(self, question: str, k: int) -> list[Passage]:
        return [Passage(file=d.metadata["file"], heading="", start_line=d.metadata["start_line"],
                        end_line=d.metadata["end_line"], text=d.page_content, score=0.0)
                for d in self.store.similarity_search(question, k=k)]


def must_score(answer: str, must: list[list[str]]) -> tuple[bool, float]:
    """All fact groups present (any alternative, case-insensitive)?"""
    if not must:
        return True, 1.0
    text = answer.lower()
    hits = [any(alt.lower() in text for alt in group) for group in must]
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
            from rag.chains import strip_citations

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
    try:
        from rag.verify import with_heading
    except ImportError:
        return passage.text
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


def fmt(value) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3f}"
    return str(value)


_REPORT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_report_name(name: str) -> str:
    """A report name is a plain file-name stem (it goes into evals/reports/<date>-<name>)."""
    if not _REPORT_NAME.fullmatch(name or "") or len(name) > 100:
        raise InputError(f"Report name {name!r} must be letters, digits, '.', '_' or '-' "
                         "(no folders), e.g. --name dev-quick.")
    return name


def write_report(name: str, data: dict, markdown: str, folder: Path = REPORTS,
                 dated: bool = True) -> Path:
    """Write ``<date>-<name>.json`` and ``.md`` (no date prefix for standing reports)."""
    check_report_name(name)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{dt.date.today().isoformat()}-{name}" if dated else name
    (folder / f"{stem}.json").write_text(json.dumps(data, indent=2, default=str) + "\n",
                                         encoding="utf-8")
    path = folder / f"{stem}.md"
    path.write_text(markdown, encoding="utf-8")
    return path


def command_line() -> str:
    return "study " + " ".join(sys.argv[1:]) if sys.argv and "study" in sys.argv[0] else \
        " ".join(sys.argv)


def table(rows: dict[str, dict], columns: list[str]) -> str:
    head = "| | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns) + "\n"
    return head + "".join(
        f"| {name} | " + " | ".join(fmt(r.get(c, float("nan"))) for c in columns) + " |\n"
        for name, r in rows.items())
