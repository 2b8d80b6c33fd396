"""A study guide per topic: the key note lines on it, grouped by heading, each cited to its line.

Built on the hybrid retrieval every feature uses: the passages retrieved for the topic that
actually mention it become sections (one per file and heading); their lines are cleaned of list
and link markup and ranked by how much of the topic they carry and whether they state a
definition or a quantity; a last section collects the numbers and limits worth memorising.
Nothing here knows the subject: it reads headings, list structure, numbers and plain English
quantity words, so it works the same on anyone's notes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.errors import InputError
from rag.models import page_label
from rag.retrieval import HybridSearch, clean_question
from rag.text import (LIMIT, content_terms, coverage, idf_weights, sentences, stems,
                      strip_markup, unknown_names)

NUMBERS_HEADING = "Numbers and limits to memorise"

_FENCE = re.compile(r"^\s*(```|~~~)")
_LIST = re.compile(r"^\s*(?:(?:[-*+>]|\d+[.)])\s+)+")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s")
# Acronyms and names with digits ("H2O", "DNA") are matched case-sensitively: "h2 = 5" in a
# formula is not about H2.
_STRICT = re.compile(r"\b(?=\w*\d)(?=\w*[A-Za-z])\w+\b|\b[A-Z]{2,}\w*\b")
# A quantity: digits not glued to a preceding letter (so names like "H2O" or "a3" are not
# numbers), optionally with a unit or a percent sign.
_NUMBER = re.compile(r"(?<![A-Za-z0-9_.\[-])\d+(?:[.,:]\d+)*(?:\s?%|\s?[A-Za-z]{1,12}\b)?")
# A capitalised word and a number inside a sentence is a name ("runs Windows 11"), unless the
# word is a limit ("Max 5").
_NAMED = re.compile(r"(?:(?<=\w )|(?<=\w, ))[A-Z][A-Za-z]*\s(\d+)\b")
_DEFINES = re.compile(r"\b(?:is|are|means|refers to|stands for|allows?|lets?|provides?|"
                      r"supports?)\b|:| [-–—] ", re.I)


@dataclass(frozen=True)
class Cited:
    """Where a guide line comes from: the exact line of the note file."""

    file: str
    heading: str
    start_line: int
    end_line: int
    page: int | None = None  # page or slide of a converted document

    @property
    def lines(self) -> str:
        page = f"{page_label(self.file, self.page)}, " if self.page is not None else ""
        return page + (f"line {self.start_line}" if self.start_line == self.end_line else
                       f"lines {self.start_line}–{self.end_line}")

    @property
    def short(self) -> str:
        """``file, line n`` (under a section that already names the heading)."""
        return f"{self.file}, {self.lines}"

    @property
    def location(self) -> str:
        head = f" › {self.heading.replace(' > ', ' › ')}" if self.heading else ""
        return f"{self.file}{head} ({self.lines})"


@dataclass(frozen=True)
class Item:
    text: str
    passage: Cited
    score: float = 0.0
    quantity: float = 0.0  # > 0: a number (more with a unit or a limit word)


@dataclass
class Section:
    heading: str
    items: list[Item] = field(default_factory=list)


@dataclass
class Guide:
    topic: str
    sections: list[Section]

    @property
    def covered(self) -> bool:
        return bool(self.sections)

    @property
    def message(self) -> str:
        return f"Your notes don't cover {self.topic!r}." if not self.covered else ""

    def to_json(self) -> dict:
        out: dict = {"topic": self.topic, "sections": [
            {"heading": s.heading, "items": [
                {"text": i.text, "passage": {"file": i.passage.file, "heading": i.passage.heading,
                                             "start_line": i.passage.start_line,
                                             "end_line": i.passage.end_line,
                                             **({"page": i.passage.page}
                                                if i.passage.page is not None else {})}}
                for i in s.items]} for s in self.sections]}
        if not self.covered:
            out["message"] = self.message
        return out

    def to_markdown(self) -> str:
        if not self.covered:
            return self.message + "\n"
        out = [f"# Study guide: {self.topic}", ""]
        for s in self.sections:
            out += [f"## {s.heading}", ""]
            out += [f"- {i.text} — *{i.passage.short}*" for i in s.items]
            out.append("")
        return "\n".join(out)


def _clean(line: str) -> str:
    text = _IMAGE.sub("", line)
    text = _LINK.sub(r"\1", text)
    text = _LIST.sub("", text)
    return strip_markup(text).strip()


def _mentions(strict: list[str], text: str) -> bool:
    """No acronym in the topic, or one of them written the same way in the text."""
    return not strict or any(re.search(rf"(?<!\w){re.escape(t)}", text) for t in strict)


def quantity(text: str) -> float:
    """How much of a number-to-memorise the text is: 0 none, 1 a number, +0.5 with a unit or
    percent sign, +1 with a limit word ("up to", "maximum", "at least", ...)."""
    named = {m.start(1) for m in _NAMED.finditer(text) if not LIMIT.match(m.group(0))}
    numbers = [m.group(0) for m in _NUMBER.finditer(text) if m.start() not in named]
    if not numbers:
        return 0.0
    unit = any(not n[-1].isdigit() for n in numbers)
    return 1.0 + 0.5 * unit + 1.0 * bool(LIMIT.search(text))


def _short(text: str, max_chars: int) -> list[str]:
    """A long note line as its sentences, each cut to ``max_chars`` at a word."""
    parts = sentences(text) if len(text) > max_chars else [text]
    out = []
    for part in parts:
        if len(part) > max_chars:
            part = part[:max_chars].rsplit(" ", 1)[0].rstrip(",;:") + " …"
        out.append(part)
    return out


class GuideMaker:
    """Builds the guide for a topic from the notes' own lines (no generator involved)."""

    def __init__(self, search: HybridSearch):
        self.search = search
        self.params = search.settings.guide
        self._wrappers: dict[str, int] | None = None

    def _shown(self, chunk) -> str:
        """The heading path without the file's wrapping title (a single top heading that every
        section of the file sits under, as in notes that start with "# Course name")."""
        if self._wrappers is None:
            paths: dict[str, list[list[str]]] = {}
            for c in self.search.index.chunks().values():
                paths.setdefault(c.file, []).append((c.heading or "").split(" > "))
            self._wrappers = {}
            for file, heads in paths.items():
                shared = 0
                while all(len(h) > shared and h[shared] == heads[0][shared] for h in heads):
                    shared += 1
                self._wrappers[file] = shared
        parts = [p for p in (chunk.heading or "").split(" > ") if p]
        parts = parts[min(self._wrappers.get(chunk.file, 0), max(len(parts) - 1, 0)):]
        return " › ".join(parts) or chunk.title or chunk.file

    def _lines(self, chunk):
        """(first line, last line, text) of the chunk's fact lines: no headings, code, images,
        tables or bare labels; a label ending in ':' is joined with its short sub-items."""
        entries, fenced = [], False
        for offset, raw in enumerate(chunk.text.split("\n")):
            if _FENCE.match(raw):
                fenced = not fenced
                continue
            if fenced or _HEADING.match(raw) or raw.lstrip().startswith("|") or \
                    raw.startswith("    ") and not _LIST.match(raw):
                continue
            text = _clean(raw)
            if text:
                # Link text alone is a reference or a contents entry, not a fact.
                facts = len(content_terms(_LINK.sub("", _IMAGE.sub("", raw))))
                entries.append((chunk.start_line + offset, len(raw) - len(raw.lstrip()), text,
                                facts))
        i = 0
        while i < len(entries):
            number, indent, text, facts = entries[i]
            i += 1
            if text.endswith(":"):
                kids = []
                while i < len(entries) and entries[i][1] > indent:
                    kids.append(entries[i])
                    i += 1
                joined = f"{text} " + "; ".join(k[2].rstrip(".;") for k in kids)
                if kids and len(joined) <= self.params.max_chars:
                    yield number, kids[-1][0], joined
                else:  # a label alone says nothing; long sub-items stand on their own
                    i -= len(kids)
                continue
            if facts >= self.params.min_terms and not text.endswith("?"):
                yield number, number, text

    def _items(self, chunk, weights: dict[str, float], strict: list[str], seen: set[str]
               ) -> list[Item]:
        """The chunk's best ``guide.items`` fact lines on the topic, in note order (empty when
        the passage was retrieved but is not about the topic)."""
        head = f"{chunk.heading}\n{chunk.title}"
        lines = [stems(t) for t in [*head.split("\n"), *chunk.text.split("\n")]]
        on_topic = self.params.on_topic
        if coverage(weights, lines)[1] < on_topic or not _mentions(strict, head + chunk.text):
            return []
        heading_terms = stems(head)
        # Under a heading about the topic every fact counts; elsewhere only the lines that
        # mention it (one line on the topic in a section about something else).
        whole_section = coverage(weights, [heading_terms])[1] >= on_topic and \
            _mentions(strict, head)
        items = []
        for first, last, line in self._lines(chunk):
            for text in _short(line, self.params.max_chars):
                key = " ".join(content_terms(text))
                terms = stems(text)
                if key in seen or not whole_section and (
                        coverage(weights, [terms])[1] < on_topic or not _mentions(strict, text)):
                    continue  # chunks overlap (the same line twice), or off the topic
                seen.add(key)
                amount = quantity(text)
                score = (coverage(weights, [terms | heading_terms])[1]
                         + 0.3 * bool(_DEFINES.search(text)) + 0.3 * bool(amount)
                         + 0.2 * (len(terms) >= 5) - 0.3 * (len(text.split()) > 40))
                items.append(Item(text, Cited(chunk.file, chunk.heading, first, last,
                                              chunk.page), score, amount))
        best = sorted(items, key=lambda i: -i.score)[: self.params.items]
        return sorted(best, key=lambda i: i.passage.start_line)

    def build(self, topic: str) -> Guide:
        topic = clean_question(topic) if topic and topic.strip() else ""
        if not topic:
            raise InputError('The topic is empty: give a topic, e.g. one of `study topics`.')
        index = self.search.index
        df = index.term_df()
        weights = idf_weights(stems(topic), df, max(len(index.chunks()), 1))
        if not weights or unknown_names(topic, df):
            return Guide(topic, [])
        strict = _STRICT.findall(topic)
        sections: dict[tuple[str, str], Section] = {}
        seen: set[str] = set()
        for hit in self.search.hits(topic, k=self.params.passages):
            items = self._items(hit.chunk, weights, strict, seen)
            if items:
                key = (hit.chunk.file, hit.chunk.heading)
                section = sections.setdefault(key, Section(self._shown(hit.chunk)))
                section.items = sorted(section.items + items, key=lambda i: i.passage.start_line)
        out = list(sections.values())
        numbers = [i for s in out for i in s.items if i.quantity]
        if numbers:
            top = {id(i) for i in sorted(numbers, key=lambda i: (-i.quantity, -i.score))
                   [:self.params.numbers_max]}
            out.append(Section(NUMBERS_HEADING, [i for i in numbers if id(i) in top]))
        return Guide(topic, out)
