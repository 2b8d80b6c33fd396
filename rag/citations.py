"""[n] citations, written once: read them off generated text, number them by first use, write
them back.

A model cites the passages of its prompt by number; the answer shows only the passages that
are cited, numbered 1..m in the order the sentences first use them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rag.models import Citation, Passage, Sentence
from rag.text import sentences as split_sentences

_CITE = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_LEADING_CITES = re.compile(r"^((?:\[\d+(?:\s*,\s*\d+)*\]\s*)+)")


def markers(numbers: Iterable[int]) -> str:
    """``[1][3]``: how a sentence shows the passages it cites."""
    return "".join(f"[{n}]" for n in numbers)


def parse_citations(text: str) -> list[int]:
    return [int(n) for group in _CITE.findall(text) for n in group.split(",")]


def strip_citations(text: str) -> str:
    return " ".join(_CITE.sub("", text).split())


def _tidy(text: str) -> str:
    text = " ".join(text.split())
    return re.sub(r"\s+([.,;:!?])", r"\1", text).strip()


def parse_sentences(text: str) -> list[Sentence]:
    """Split generated text into sentences, each with the [n] citations it carries.

    Citations written after the full stop ("... objects. [1] Next ...") belong to the
    sentence before them; a sentence that ends up with no words is dropped.
    """
    out: list[Sentence] = []
    for piece in split_sentences(text):
        lead = _LEADING_CITES.match(piece)
        if lead and out:
            out[-1].citations.extend(parse_citations(lead.group(1)))
            piece = piece[lead.end():]
        body = _tidy(_CITE.sub("", piece))
        cites = parse_citations(piece)
        if body and re.search(r"\w", body):
            out.append(Sentence(text=body, citations=cites))
        elif cites and out:
            out[-1].citations.extend(cites)
    for s in out:
        s.citations = list(dict.fromkeys(s.citations))
    return out


def valid_citations(numbers: list[int], passages: list[Passage]) -> list[int]:
    """The numbers that name one of ``passages`` (a model may cite one it was not given)."""
    return [n for n in numbers if 1 <= n <= len(passages)]


def renumber(sentences: list[Sentence], passages: list[Passage]
             ) -> tuple[list[Sentence], list[Citation]]:
    """Keep only citations that exist, number them 1..m in order of first use."""
    mapping: dict[int, int] = {}
    out: list[Sentence] = []
    for s in sentences:
        valid = valid_citations(s.citations, passages)
        for n in valid:
            mapping.setdefault(n, len(mapping) + 1)
        out.append(s.model_copy(update={"citations": sorted({mapping[n] for n in valid})}))
    citations = [Citation(n=new, passage=passages[old - 1]) for old, new in mapping.items()]
    return out, citations


def renumber_shown(shown: list[Sentence], every: list[Sentence], passages: list[Passage]
                   ) -> tuple[list[Sentence], list[Citation]]:
    """Renumber by first use in the shown sentences; hidden (dropped) sentences keep the
    numbers they share with shown ones and lose the rest, so the answer lists no passage
    that only a dropped sentence cited."""
    shown_ids = {id(s) for s in shown}
    renumbered, citations = renumber(shown, passages)
    by_passage = {c.passage.key: c.n for c in citations}
    out: list[Sentence] = []
    it = iter(renumbered)
    for s in every:
        if id(s) in shown_ids:
            out.append(next(it))
        else:
            keys = [passages[n - 1].key for n in valid_citations(s.citations, passages)]
            nums = sorted({by_passage[k] for k in keys if k in by_passage})
            out.append(s.model_copy(update={"citations": nums}))
    return out, citations


def render(sentences: list[Sentence], mark_unsupported: bool = False) -> str:
    """The answer text: each sentence followed by its markers."""
    parts = []
    for s in sentences:
        text = s.text if s.supported or not mark_unsupported else f"(unsupported) {s.text}"
        parts.append(f"{text} {markers(s.citations)}".strip())
    return " ".join(parts)
