"""Typed records that cross module boundaries: chunks, passages, citations, answers.

Every other module speaks these types, so the JSON schema of the CLI is defined here once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from pydantic import BaseModel, Field, model_serializer


@dataclass(frozen=True)
class NoteFile:
    """One loaded note file; ``lines`` are normalised but map 1:1 to the original lines."""

    path: str  # absolute path on disk
    rel: str  # path relative to the notes folder (what citations show)
    lines: tuple[str, ...]
    title: str = ""
    sha256: str = ""
    tags: tuple[str, ...] = ()  # front-matter tags (Obsidian)
    pages: tuple[int, ...] | None = None  # page or slide of each line (converted documents)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class Chunk:
    """A heading-aware slice of one note file with its exact 1-based line span."""

    file: str
    heading: str
    start_line: int
    end_line: int
    text: str
    title: str = ""
    hash: str = field(default="")
    page: int | None = None  # the page or slide it lies on (documents only)
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", tuple(self.tags))  # lists come back from JSON caches
        if not self.hash:
            digest = hashlib.sha256(
                f"{self.file}\x00{self.heading}\x00{self.text}".encode()
            ).hexdigest()
            object.__setattr__(self, "hash", digest[:16])

    @property
    def id(self) -> str:
        return f"{self.file}:{self.start_line}-{self.end_line}:{self.hash}"

    @property
    def context_header(self) -> str:
        """Contextual header embedded with the text (file title and heading path)."""
        parts = [self.title or self.file]
        if self.heading:
            parts.append(self.heading)
        return " > ".join(parts)

    @property
    def embed_text(self) -> str:
        return f"{self.context_header}\n{self.text}"


def page_label(file: str, page: int | None) -> str:
    """The label of a page: "slide 3" in a PPTX, "page 3" in other documents, "" if none."""
    if page is None:
        return ""
    return f"{'slide' if file.lower().endswith('.pptx') else 'page'} {page}"


class Passage(BaseModel):
    """A retrieved chunk as users and tools see it (the stable JSON shape)."""

    file: str
    heading: str
    start_line: int
    end_line: int
    text: str
    score: float = 0.0
    page: int | None = None  # page (PDF) or slide (PPTX); absent for text notes

    @model_serializer(mode="wrap")
    def _omit_missing_page(self, handler):
        """Text notes keep the JSON shape they always had: no "page" key."""
        data = handler(self)
        if data.get("page") is None:
            data.pop("page", None)
        return data

    @classmethod
    def from_chunk(cls, chunk: Chunk, score: float = 0.0) -> "Passage":
        return cls(
            file=chunk.file,
            heading=chunk.heading,
            start_line=chunk.start_line,
            end_line=chunk.end_line,
            text=chunk.text,
            score=float(score),
            page=chunk.page,
        )

    @property
    def page_label(self) -> str:
        return page_label(self.file, self.page)

    @property
    def key(self) -> str:
        return f"{self.file}:{self.start_line}-{self.end_line}"

    @property
    def location(self) -> str:
        """Human-readable pointer: ``file › heading (lines a–b)``."""
        head = f" › {self.heading}" if self.heading else ""
        page = f"{self.page_label}, " if self.page is not None else ""
        return f"{self.file}{head} ({page}lines {self.start_line}–{self.end_line})"


@dataclass
class Hit:
    """A retrieved chunk with the raw signals abstention and the verifier use."""

    id: str
    chunk: Chunk
    fused: float
    dense: float  # cosine similarity to the question
    bm25: float

    def passage(self) -> Passage:
        return Passage.from_chunk(self.chunk, score=round(self.fused, 6))


class Citation(BaseModel):
    n: int
    passage: Passage


class Sentence(BaseModel):
    """One answer sentence with the citations it carries and its support verdict."""

    text: str
    citations: list[int] = Field(default_factory=list)
    supported: bool = True
    score: float = 1.0


class Answer(BaseModel):
    """A cited answer; ``sentences`` hold the per-sentence support check."""

    question: str
    answer: str
    abstained: bool = False
    citations: list[Citation] = Field(default_factory=list)
    latency_ms: float = 0.0
    sentences: list[Sentence] = Field(default_factory=list)
    backend: str = "extractive"
    model: str = ""
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    fell_back: bool = False
    nearest_topics: list[str] = Field(default_factory=list)
    standalone_question: str = ""

    def to_json(self) -> dict:
        """The stable ``ask --json`` shape (spine fields first, then generation fields)."""
        return self.model_dump(mode="json")


class RetrievalResult(BaseModel):
    question: str
    passages: list[Passage]
