"""Heading-aware chunking with exact line spans.

Sections follow Markdown headings; long sections are split on list/paragraph boundaries with
a line overlap, tiny neighbours are merged. Sizes were chosen on the dev set (see README,
"Chunk size"). In a converted document no chunk crosses a page or slide, so every chunk
can name the one page it is on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.models import Chunk, NoteFile
from rag.text import HEADING, SENTENCE_END

# A fence may open after a list marker ("- ```"): missing it swallows every later heading.
_FENCE = re.compile(r"^\s*(?:[-*+]\s+|\d+[.)]\s+)?(```|~~~)")


@dataclass
class Section:
    heading: str
    start: int  # 1-based, inclusive
    end: int
    lines: list[str]
    page: int | None = None

    @property
    def size(self) -> int:
        return sum(len(line) + 1 for line in self.lines)

    @property
    def has_body(self) -> bool:
        return any(line.strip() and not HEADING.match(line) for line in self.lines)


def clean_heading(text: str) -> str:
    """Strip Markdown emphasis and links from a heading so paths read cleanly."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[*_`]+", "", text).strip()


def split_sections(note: NoteFile) -> list[Section]:
    """Cut a note into sections at headings (ignoring '#' inside code fences)."""
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    pages = note.pages
    current = Section(heading="", start=1, end=0, lines=[], page=pages[0] if pages else None)
    in_fence = False
    for number, line in enumerate(note.lines, start=1):
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else HEADING.match(line)
        page = pages[number - 1] if pages else None
        if match:
            if current.lines:
                sections.append(current)
            level = len(match.group(1))
            stack = [(lvl, name) for lvl, name in stack if lvl < level]
            stack.append((level, clean_heading(match.group(2))))
            heading = " > ".join(name for _, name in stack if name)
            current = Section(heading=heading, start=number, end=number, lines=[line], page=page)
        elif page != current.page:  # a new page goes on under the same heading
            if current.lines:
                sections.append(current)
            current = Section(current.heading, number, number, [line], page)
        else:
            current.lines.append(line)
            current.end = number
    if current.lines:
        sections.append(current)
    return [trim(s) for s in sections if s.has_body]


def trim(section: Section) -> Section:
    """Drop blank and separator lines at both ends so spans point at real text."""
    lines, lo, hi = section.lines, 0, len(section.lines)
    while hi > lo and lines[hi - 1].strip() in ("", "---", "***"):
        hi -= 1
    while lo < hi and not lines[lo].strip():  # indices, not pop(0): linear on 1M blank lines
        lo += 1
    return Section(section.heading, section.start + lo, section.end - (len(lines) - hi),
                   lines[lo:hi], section.page)


def _is_boundary(line: str) -> bool:
    """A good place to start a new window: blank line, heading or top-level list item."""
    return not line.strip() or line.startswith(("- ", "* ", "+ ", "#")) or bool(
        re.match(r"^\d+\.\s", line)
    )


def _split_long_line(line: str, size: int) -> list[str]:
    """Break one very long line at sentence (or word) boundaries."""
    pieces: list[str] = []
    buf = ""
    for part in SENTENCE_END.split(line):
        pos = 0  # walk an index instead of re-slicing: linear on a 20 MB one-line file
        while len(part) - pos > size:
            cut = part.rfind(" ", pos, pos + size) - pos
            cut = cut if cut > size // 2 else size
            pieces.append(part[pos:pos + cut])
            pos += cut
            while pos < len(part) and part[pos].isspace():
                pos += 1
        part = part[pos:]
        if buf and len(buf) + len(part) + 1 > size:
            pieces.append(buf)
            buf = part
        else:
            buf = f"{buf} {part}".strip()
    if buf:
        pieces.append(buf)
    return pieces


def window_section(section: Section, size: int, overlap: int) -> list[Section]:
    """Split a long section into windows of whole lines with ~overlap chars repeated."""
    if section.size <= size:
        return [section]
    windows: list[Section] = []
    i, n = 0, len(section.lines)
    while i < n:
        line = section.lines[i]
        if len(line) > 2 * size:
            number = section.start + i
            for piece in _split_long_line(line, size):
                windows.append(Section(section.heading, number, number, [piece], section.page))
            i += 1
            continue
        j, total, last_boundary = i, 0, None
        while j < n and (total + len(section.lines[j]) + 1 <= size or j == i):
            if len(section.lines[j]) > 2 * size and j > i:
                break
            if j > i and _is_boundary(section.lines[j]) and total >= size * 0.5:
                last_boundary = j
            total += len(section.lines[j]) + 1
            j += 1
        if j < n and last_boundary is not None:
            j = last_boundary
        windows.append(
            Section(section.heading, section.start + i, section.start + j - 1, section.lines[i:j],
                    section.page)
        )
        if j >= n:
            break
        back, k = 0, j
        while k - 1 > i and back + len(section.lines[k - 1]) + 1 <= overlap:
            back += len(section.lines[k - 1]) + 1
            k -= 1
        # Overlap only if the next window can still reach past this one's end.
        i = k if k > i and back + len(section.lines[j]) + 1 <= size else j
    return [trim(w) for w in windows if any(x.strip() for x in w.lines)]


def merge_small(sections: list[Section], size: int, min_chars: int) -> list[Section]:
    """Merge a tiny section into the next (or previous) one while the result stays <= size."""
    merged: list[Section] = []
    for section in sections:
        prev = merged[-1] if merged else None
        if (
            prev is not None
            and (prev.size < min_chars or section.size < min_chars)
            and prev.size + section.size <= size
            and section.start > prev.end
            and section.page == prev.page
        ):
            gap = section.start - prev.end - 1
            filler = [""] * gap
            heading = _common_heading(prev.heading, section.heading)
            merged[-1] = Section(
                heading, prev.start, section.end, prev.lines + filler + section.lines, prev.page
            )
        else:
            merged.append(section)
    return merged


def _common_heading(a: str, b: str) -> str:
    pa, pb = a.split(" > "), b.split(" > ")
    common = []
    for x, y in zip(pa, pb):
        if x != y:
            break
        common.append(x)
    return " > ".join(common) if common else a


def chunk_note(
    note: NoteFile, chunk_size: int = 900, overlap: int = 150, min_chars: int = 200
) -> list[Chunk]:
    """Chunks of one note, in file order, each with heading path and exact line span."""
    windows: list[Section] = []
    for section in split_sections(note):
        windows.extend(window_section(section, chunk_size, overlap))
    windows = merge_small(windows, chunk_size, min_chars)
    chunks: list[Chunk] = []
    for w in windows:
        text = "\n".join(w.lines).strip("\n")
        if text.strip():
            chunks.append(
                Chunk(
                    file=note.rel,
                    heading=w.heading,
                    start_line=w.start,
                    end_line=w.end,
                    text=text,
                    title=note.title,
                    page=w.page,
                    tags=note.tags,
                )
            )
    return chunks
