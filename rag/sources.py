"""Choose the sources: answers, quizzes and guides drawn from some of the notes only.

A source is a file or a folder, relative to the notes folder (a bare file name also matches
that file in any folder). Retrieval filters by the chosen files in one place,
``HybridSearch.hits``; features that list chunks themselves (quiz, topics) see the index
through ``SourceScope``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath

from rag.errors import InputError
from rag.models import Chunk


def _clean(source: str) -> str:
    text = str(source).strip().replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    return text.strip("/")


def matches(file: str, source: str) -> bool:
    """``file`` (relative to the notes folder) is the source, lies under it, or has its name."""
    return (file == source or file.startswith(source + "/")
            or ("/" not in source and PurePosixPath(file).name == source))


def from_sources(file: str, sources: list[str] | None) -> bool:
    """Whether a file (of a saved question, say) lies in the sources; no sources: all do."""
    cleaned = [c for c in map(_clean, sources or []) if c]
    return not cleaned or any(matches(file, c) for c in cleaned)


def resolve(files: Iterable[str], sources: Iterable[str]) -> set[str]:
    """The indexed files the sources name; a source that names none is one clear error."""
    files = sorted(set(files))
    chosen: set[str] = set()
    for raw in sources:
        source = _clean(raw)
        if not source:
            continue
        found = {f for f in files if matches(f, source)}
        if not found:
            shown = ", ".join(files[:8]) + (f" and {len(files) - 8} more" if len(files) > 8
                                             else "")
            raise InputError(
                f"Source {raw!r} is no indexed file or folder (give it relative to the notes "
                f"folder); indexed: {shown or 'nothing yet, run `study ingest`'}.")
        chosen |= found
    return chosen


class SourceScope:
    """The index as seen from the chosen sources: ``chunks()`` and ``chunk()`` hold only
    their chunks; everything else (search, vectors, ingest) is the whole index's."""

    def __init__(self, index, sources: list[str]):
        self._index = index
        self.sources = list(sources)
        self._seen: dict[str, Chunk] | None = None
        self._chunks: dict[str, Chunk] = {}

    def __getattr__(self, name: str):
        return getattr(self._index, name)

    def chunks(self) -> dict[str, Chunk]:
        whole = self._index.chunks()
        if whole is not self._seen:  # re-indexed since: filter again
            files = resolve((c.file for c in whole.values()), self.sources)
            self._chunks = {cid: c for cid, c in whole.items() if c.file in files}
            self._seen = whole
        return self._chunks

    def chunk(self, cid: str) -> Chunk | None:
        return self.chunks().get(cid)
