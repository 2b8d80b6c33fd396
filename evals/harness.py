"""The eval harness: dev sets and their fixed halves, an index of their own, and the plain
LangChain recipe that every figure is set against."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from rag.config import Settings
from rag.errors import InputError
from rag.jsonl import read_jsonl
from rag.models import Passage

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
    return settings.updated(home=settings.home / "eval" / f"{notes_dir.name}-{key}", storage={
        "notes_dir": notes_dir, "model_cache_dir": settings.cache_dir})


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


class PlainRecipe:
    """The LangChain tutorial baseline: RecursiveCharacterTextSplitter 1000/200 + MiniLM +
    Chroma top-k, on the raw files (no headings, no BM25)."""

    def __init__(self, settings: Settings):
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        from rag.embeddings import get_embedder

        # What the tutorial uses: sentence-transformers on torch, its default 256 tokens.
        self.embedder = get_embedder(settings.embedding.model, "torch", "", 32, 256)
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
        for path in sorted(Path(self.settings.storage.notes_dir).rglob("*")):
            if path.suffix.lower() in (".md", ".txt", ".markdown") and path.is_file():
                text = path.read_text(encoding="utf-8", errors="replace")
                file = path.relative_to(self.settings.storage.notes_dir).as_posix()
                docs.append(Document(page_content=text, metadata={"file": file, "full": text}))
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
