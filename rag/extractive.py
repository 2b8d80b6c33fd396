"""The extractive answerer: the note lines that answer the question, each cited.

No model writes anything here, so every sentence is the student's own words. It is the
fallback for every generator and must be good on its own, on any subject: nothing here knows
what the notes are about. Two steps:

* :func:`candidates` splits the top passages into lines (long lines into sentences), keeps
  each line's place in the outline (parent bullet, child bullets) and scores it by how well it
  answers: the embedding model compares the question with the line *in its heading context*,
  combined with IDF-weighted lexical evidence over the whole index and the passage's rank.
* :func:`compose` picks the best line, expands it to its context where the notes nest (a
  parent bullet that only introduces a list brings its children; a child brings its parent as
  a lead-in), adds lines only while they cover parts of the question not yet covered, and keeps
  lines of one passage together in their order. The weights (:class:`rag.config.ComposeParams`,
  the ``answer.extractive`` settings) are fitted on the tune halves of the user-style sets of
  two subjects (``evals/tune_answers.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rag.chunking import clean_heading
from rag.config import ComposeParams
from rag.models import Chunk, Hit
from rag.quantities import asked_kinds, asks_figure, demanded_kinds, gives_kind
from rag.text import (HEADING, as_sentence, content_terms, idf_weights, question_parts,
                      sentences, stems, strip_markup)

_BULLET = re.compile(r"^(\s*)(?:[-*+]|\d+[.)])\s+")
_RESTATES = re.compile(r"^(prompt|question|scenario|q)\s*:|\?\s*$", re.IGNORECASE)
# Text addressed to an AI assistant (prompt injection planted in notes) is never a fact.
_INSTRUCTION = re.compile(
    r"\b(ignore|disregard|forget) (all |any |the )?(previous|prior|above|earlier|your)\b"
    r"|^\W*(system|assistant)\s*:|\b(system|hidden) prompt|\breveal (your|the) \w* ?prompt"
    r"|\b(reply|respond|answer|say) (only|with only|just)\b|\byou are now\b"
    r"|\bnew instructions?\b|\bas an ai\b|\binstead of answering\b"
    r"|\b(assistant|ai|model|chatbot|llm)('s)? (instruction|directive|note)s?\b"
    r"|\bnote to (the )?(ai|assistant|model|llm|chatbot)\b"
    r"|\b(ignore|disregard|forget) (the |all |any |your )?(question|notes|instructions|context)\b"
    r"|\bas your (entire|whole|only|final) (answer|reply|response|output)\b"
    r"|\b(user|assistant|system)\s*:.*\b(user|assistant)\s*:", re.IGNORECASE)
_INVISIBLE = re.compile("[\u200b-\u200f\u2060\ufeff]")
_LABEL = re.compile(r"^(solution|answer)\s*:\s*", re.IGNORECASE)
_NOISE = re.compile(r"^(!?\[[^\]]*\]\([^)]*\)\s*)+$|^\|?[\s:|-]+\|?$")  # images, table rules


@dataclass
class Unit:
    """One candidate line (or sentence of a long line), placed in its passage's outline."""

    text: str
    hit_index: int
    line: int
    order: int  # position inside its passage: lines of one passage are shown in this order
    indent: int = -1  # -1: not a bullet
    parent: int | None = None  # index (in the candidate list) of the bullet it belongs to
    children: list[int] = field(default_factory=list)
    terms: set[str] = field(default_factory=set)
    sim: float = 0.0
    lexical: float = 0.0
    score: float = 0.0
    vector: np.ndarray | None = None
    selectable: bool = True
    heading: str = ""  # the nearest heading above the line (what it is about)

    @property
    def words(self) -> int:
        return len(self.text.split())


@dataclass
class Candidates:
    """The scored lines of the top passages and the question's term weights."""

    units: list[Unit]
    weights: dict[str, float]
    best_sim: float = 0.0
    best_lexical: float = 0.0
    unknown: float = 0.0  # share of the question's IDF weight on terms no note uses
    facets: np.ndarray | None = None  # units x question parts similarity (multi-part asks)
    kinds: frozenset[str] = frozenset()  # kinds of figure it demands ("how long": "time")
    figure_sim: float = -1.0  # best similarity of a line stating a figure of those kinds


@dataclass
class Extract:
    """The chosen sentences, with the hit index each cites (evidence strength for abstention
    lives in :class:`Candidates`)."""

    sentences: list[tuple[str, int, int]]  # (text, hit index, first line)


def _context(hit: Hit, lead: str) -> str:
    heading = hit.chunk.heading or hit.chunk.title
    return " > ".join(p for p in (heading, lead) if p)


def split_units(hit: Hit, hit_index: int, first: int = 0, max_chars: int = 300) -> list[Unit]:
    """Lines of a passage (long lines split into sentences) with their outline links.

    Short lines ("Objects", "Value") are kept as outline parents but are not answers on their
    own (``selectable``). ``first`` is the index the first unit will have in the caller's
    list (parent links are indexes into that list)."""
    units: list[Unit] = []
    stack: list[tuple[int, int]] = []  # (indent, unit index) of open bullets
    heading = (hit.chunk.heading or hit.chunk.title).split(" > ")[-1]
    for offset, raw in enumerate(hit.chunk.text.split("\n")):
        stripped = raw.strip()
        if stripped.startswith("#"):
            match = HEADING.match(stripped)
            heading = clean_heading(match.group(2)) if match and match.group(2) else heading
            continue
        if not stripped or stripped in ("---", "***", "```"):
            continue
        match = _BULLET.match(raw)
        indent = len(match.group(1).expandtabs(4)) if match else -1
        body = strip_markup(raw[match.end():] if match else stripped.lstrip(">").strip())
        if not body or _NOISE.match(body) or _RESTATES.search(body) \
                or _INSTRUCTION.search(_INVISIBLE.sub("", body)):
            continue  # prompts restate the problem, instructions to a model are not facts
        body = _LABEL.sub("", body)
        stack = [(i, u) for i, u in stack if i < indent] if match else []
        parent = stack[-1][1] if stack else None
        for piece in sentences(body) if len(body) > max_chars else [body]:
            index = first + len(units)
            units.append(Unit(piece, hit_index, hit.chunk.start_line + offset, index, indent,
                              parent, selectable=len(piece) >= 12
                              and len(content_terms(piece)) >= 2, heading=heading))
            if parent is not None:
                units[parent - first].children.append(index)
        if match or body.endswith(":"):
            stack.append((indent, first + len(units) - 1))
    return units


def lead_of(units: list[Unit], u: Unit, depth: int = 2) -> str:
    """The outline path above a line (its parent bullets, nearest last)."""
    path: list[str] = []
    while u.parent is not None and len(path) < depth:
        u = units[u.parent]
        path.insert(0, u.text.rstrip(":"))
    return " > ".join(path)


def line_texts(chunk: Chunk) -> list[str]:
    """What the embedder reads for each line of a chunk: heading path > parent bullets: line
    (one per unit of :func:`split_units`, in order)."""
    hit = Hit("", chunk, 0.0, 0.0, 0.0)
    units = split_units(hit, 0)
    return [f"{_context(hit, lead_of(units, u))}: {u.text}" for u in units]


def _facets(question: str, vectors: np.ndarray, embedder) -> np.ndarray | None:
    """Similarity of every line to each separate ask of the question (None for one ask)."""
    parts = question_parts(question)
    if len(parts) < 2:
        return None
    return vectors @ np.asarray(embedder.encode(parts), dtype=np.float32).T


def candidates(question: str, qvec: np.ndarray, hits: list[Hit], embedder,
               df: dict[str, int], n_docs: int, params: ComposeParams = ComposeParams(),
               line_vectors: Callable[[Chunk], np.ndarray | None] | None = None
               ) -> Candidates:
    """Every line of the top passages, scored for how well it answers the question.

    ``line_vectors`` gives a chunk's precomputed line vectors (``rag.lines``); lines of a
    chunk without them are embedded here."""
    units: list[Unit] = []
    blocks: list[tuple[int, int, Hit]] = []
    for i, hit in enumerate(hits[:params.max_passages]):
        start = len(units)
        units.extend(split_units(hit, i, first=start))
        blocks.append((start, len(units), hit))
    weights = idf_weights(stems(question), df, max(n_docs, 1))
    total = sum(weights.values()) or 1.0
    unknown = sum(w for t, w in weights.items() if not df.get(t)) / total
    kinds = frozenset(demanded_kinds(question))
    if not units:
        return Candidates([], weights, unknown=unknown, kinds=kinds)
    for u in units:
        u.terms = stems(f"{lead_of(units, u)} {u.text}")
    parts = []
    for start, end, hit in blocks:
        if start == end:
            continue
        known = line_vectors(hit.chunk) if line_vectors else None
        if known is None or len(known) != end - start:
            known = embedder.encode([f"{_context(hit, lead_of(units, u))}: {u.text}"
                                     for u in units[start:end]])
        parts.append(np.asarray(known, dtype=np.float32).reshape(end - start, -1))
    vectors = np.vstack(parts)
    for u, sim in zip(units, vectors @ qvec):
        u.sim = float(sim)
        u.lexical = sum(w for t, w in weights.items() if t in u.terms) / total
    pool = [u for u in units if u.selectable] or units
    found = Candidates(units, weights, max(u.sim for u in pool),
                       max(u.lexical for u in pool), unknown,
                       _facets(question, vectors, embedder) if params.w_facet else None, kinds,
                       figure_sim(pool, kinds))
    for u, v in zip(units, vectors):
        u.vector = v
    score(found, question, params)
    return found


def figure_sim(pool: list[Unit], kinds: frozenset[str]) -> float:
    """The best similarity among lines that state a figure of an asked kind (-1: none)."""
    if not kinds:
        return -1.0  # most questions ask for no figure: no line is read
    wanted = set(kinds)
    return max((u.sim for u in pool if gives_kind(u.text, wanted)), default=-1.0)


def score(found: Candidates, question: str, params: ComposeParams) -> None:
    """Combine the signals (separate from :func:`candidates` so tuning does not re-embed)."""
    wants_number = asks_figure(question)
    kinds = asked_kinds(question)
    for u in found.units:
        u.score = (params.w_sim * u.sim + params.w_lex * u.lexical
                   - params.w_rank * u.hit_index
                   + (params.w_number if wants_number and any(c.isdigit() for c in u.text)
                      else 0.0)
                   + (params.w_kind if gives_kind(u.text, kinds) else 0.0))


def _block(units: list[Unit], pick: int, params: ComposeParams) -> list[int]:
    """The picked line with its context: an introducing parent brings its children."""
    u = units[pick]
    block = [pick]
    if u.children and (u.text.endswith(":") or u.words <= 6):
        block += u.children[:params.max_children]
    return block


def compose(found: Candidates, params: ComposeParams = ComposeParams()) -> Extract:
    """Pick lines: the best, then others only while they cover more of the question."""
    units = found.units
    if not units:
        return Extract([])
    selectable = [i for i in range(len(units)) if units[i].selectable]
    if not selectable:
        return Extract([])
    facets = found.facets if params.w_facet else None
    answered = None if facets is None else np.full(facets.shape[1], -1.0, dtype=np.float32)
    best = max(units[i].score for i in selectable)
    chosen: list[int] = []
    seen: set[str] = set()
    total = sum(found.weights.values()) or 1.0
    words = 0
    for _ in range(params.max_lines):
        # Each round ranks again: a line that answers a part still unanswered moves up.
        def value(i: int) -> float:
            if answered is None:
                return units[i].score
            return units[i].score + params.w_facet * float(
                np.maximum(facets[i] - answered, 0).sum())
        picked = None
        for i in sorted((i for i in selectable if i not in chosen), key=value, reverse=True):
            u = units[i]
            if chosen:
                gain = sum(w for t, w in found.weights.items() if t in u.terms - seen) / total
                if u.score < best - params.band or gain < params.min_gain:
                    continue
                if u.vector is not None and any(
                        float(u.vector @ units[j].vector) > params.redundant for j in chosen):
                    continue
            block = [j for j in _block(units, i, params) if j not in chosen]
            size = sum(units[j].words for j in block)
            if chosen and words + size > params.max_words:
                continue
            picked = block
            break
        if picked is None:
            break
        chosen += picked
        for j in picked:
            seen |= units[j].terms
            if answered is not None:
                answered = np.maximum(answered, facets[j])
        words += sum(units[j].words for j in picked)
    return Extract(render_lines(units, chosen, params.heading_words))


def render_lines(units: list[Unit], chosen: list[int], heading_words: int = 0
                 ) -> list[tuple[str, int, int]]:
    """Chosen lines grouped by passage (best passage first), in note order; a child whose
    parent is not shown gets the parent as a lead-in; children follow their parent in one
    sentence; the first line under a short heading it does not name is led by the heading
    ("NAT Gateway: Gives private subnets outgoing internet access")."""
    picked = set(chosen)
    first_seen: dict[int, int] = {}
    for rank, i in enumerate(chosen):
        first_seen.setdefault(units[i].hit_index, rank)
    out: list[tuple[str, int, int]] = []
    led: tuple[int, str] | None = None
    for i in sorted(chosen, key=lambda i: (first_seen[units[i].hit_index], units[i].order)):
        u = units[i]
        if u.parent in picked:
            continue  # written with its parent
        kids = [units[c].text.rstrip(".;") for c in u.children if c in picked]
        text = u.text
        if kids:
            text = f"{text.rstrip(':').rstrip('.')}: {'; '.join(kids)}"
        elif u.parent is not None and not text.lower().startswith(units[u.parent].text.lower()):
            text = f"{units[u.parent].text.rstrip(':').rstrip('.')}: {text}"
        if (u.hit_index, u.heading) != led and 0 < len(u.heading.split()) <= heading_words \
                and not stems(u.heading) <= stems(text):
            text = f"{u.heading}: {text}"
        led = (u.hit_index, u.heading)
        out.append((as_sentence(text), u.hit_index, u.line))
    return out

