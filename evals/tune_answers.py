"""Fit the answer composer and the abstention threshold on the TUNE halves only.

    .venv/bin/python evals/tune_answers.py [--write evals/reports/tune-answers.md]

Retrieves once per question (both subjects' user-style sets), caches the scored candidate
lines, then sweeps a small grid of composer weights and abstention weights. The objective is
the mean over the two subjects' tune halves (so neither subject's quirks win); the test halves
are printed next to it for the record and never used to choose. Needs ``../shared`` for the
second subject (skipped with a note when absent).
"""

from __future__ import annotations

import argparse
import itertools
import pickle
import statistics
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rag.abstain import evidence  # noqa: E402
from rag.config import load_settings  # noqa: E402
from evals.harness import eval_settings, load_dataset  # noqa: E402
from evals.metrics import must_score  # noqa: E402
from rag.config import AbstainSettings, ComposeParams  # noqa: E402
from rag.extractive import (Candidates, candidates, compose, figure_sim,  # noqa: E402
                            score)

DATASETS = REPO / "evals" / "datasets"
SUBJECTS = {
    "aws": (DATASETS / "aws_users.jsonl", REPO / "corpus"),
    "dl": (DATASETS / "dl_users.jsonl", REPO.parent / "shared" / "notes-deep-learning"),
}


def prepare(name: str, dataset: Path, notes: Path) -> list[tuple]:
    """(item, Candidates) for every question, retrieved once with the current settings."""
    from rag.index import NoteIndex
    from rag.retrieval import HybridSearch

    settings = eval_settings(load_settings(answer={"backend": "extractive"}), notes)
    index = NoteIndex(settings)
    index.ingest(settings.storage.notes_dir)
    search = HybridSearch(settings, index)
    wide = ComposeParams(max_passages=5, w_facet=1.0)  # facets computed for the sweep
    out = []
    for item in load_dataset(dataset, settings.storage.notes_dir):
        hits = search.hits(item.question)
        qvec = index.embedder.encode([item.question])[0]
        found = candidates(item.question, qvec, hits, index.embedder, index.term_df(),
                           len(index.chunks()), wide, index.lines.vectors)
        out.append((item, found))
    print(f"{name}: {len(out)} questions prepared", file=sys.stderr)
    return out


def restrict(found: Candidates, passages: int) -> Candidates:
    units = [u for u in found.units if u.hit_index < passages]
    keep = {u.order for u in units}
    # Outline links are indexes into the full list: re-index into the kept list.
    where = {u.order: i for i, u in enumerate(units)}
    copies = []
    for u in units:
        copies.append(replace(u, order=where[u.order],
                              parent=where.get(u.parent) if u.parent in keep else None,
                              children=[where[c] for c in u.children if c in keep]))
    pool = [u for u in copies if u.selectable] or copies
    facets = None if found.facets is None else found.facets[[u.order for u in units]]
    return Candidates(copies, found.weights, max((u.sim for u in pool), default=0.0),
                      max((u.lexical for u in pool), default=0.0), found.unknown, facets,
                      found.kinds, figure_sim(pool, found.kinds))


_RESTRICTED: dict[tuple[int, int], Candidates] = {}


def restricted(found: Candidates, passages: int) -> Candidates:
    key = (id(found), passages)
    if key not in _RESTRICTED:
        _RESTRICTED[key] = restrict(found, passages)
    return _RESTRICTED[key]


def answer_stats(rows: list[tuple], params: ComposeParams) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for split in ("tune", "test"):
        correct, words = [], []
        for item, found in rows:
            if not item.answerable or item.split != split:
                continue
            sub = restricted(found, params.max_passages)
            score(sub, item.question, params)
            text = " ".join(t for t, _, _ in compose(sub, params).sentences)
            correct.append(must_score(text, item.must)[0])
            words.append(len(text.split()))
        out[split] = {"must": statistics.mean(correct), "words": statistics.median(words),
                      "n": len(correct)}
    return out


def abstain_stats(rows: list[tuple], weights: AbstainSettings, threshold: float,
                  passages: int) -> dict[str, dict]:
    out = {}
    for split in ("tune", "test"):
        unans = [evidence(restricted(f, passages), weights) < threshold
                 for it, f in rows if not it.answerable and it.split == split]
        ans = [evidence(restricted(f, passages), weights) < threshold
               for it, f in rows if it.answerable and it.split == split]
        out[split] = {"abstention": statistics.mean(unans) if unans else float("nan"),
                      "false": statistics.mean(ans), "n_unans": len(unans)}
    return out


GRID = {
    "max_passages": [3, 5],
    "max_lines": [4, 8],
    "max_words": [50, 60, 70],
    "w_lex": [0.25, 0.5],
    "w_rank": [0.03],
    "w_number": [0.05],
    "band": [0.2, 1.0],
    "min_gain": [0.0],
    "w_facet": [0.0, 0.5, 1.0, 2.0],
    "heading_words": [0, 6, 10],
}
MAX_MEDIAN_WORDS = 70  # half the plain recipe's top passage (~140 words)


def sweep_composer(data: dict[str, list]) -> tuple[ComposeParams, list]:
    """Best mean tune must-facts over subjects, median words within budget on every tune
    half."""
    results = []
    keys = list(GRID)
    for values in itertools.product(*(GRID[k] for k in keys)):
        params = ComposeParams(**dict(zip(keys, values)))
        stats = {name: answer_stats(rows, params) for name, rows in data.items()}
        if any(s["tune"]["words"] > MAX_MEDIAN_WORDS for s in stats.values()):
            continue
        objective = statistics.mean(s["tune"]["must"] for s in stats.values())
        results.append((objective, params, stats))
    results.sort(key=lambda r: r[0], reverse=True)
    return results[0][1], results


# The ceilings on false abstention per subject (answerable questions refused).
MAX_FALSE = {"aws": 0.05, "dl": 0.10}
SHARED_FLOOR = AbstainSettings().threshold


def sweep_abstention(data: dict[str, list], passages: int) -> tuple:
    """Lowest mean tune (missed + 2 x false) abstention, false abstention within each
    subject's ceiling on its tune half. Ties go to the threshold nearest ``SHARED_FLOOR``:
    practice questions and explanations use the same threshold as a similarity floor."""
    best = None
    for w_lex, w_unk, w_fig in itertools.product([0.0, 0.2, 0.4, 0.8], [0.0, 0.2, 0.4, 0.8],
                                                 [0.0, 0.1, 0.2, 0.3, 0.5]):
        weights = AbstainSettings(w_lexical=w_lex, w_unknown=w_unk, w_figure=w_fig)
        for threshold in [x / 100 for x in range(0, 80)]:
            stats = {n: abstain_stats(rows, weights, threshold, passages)
                     for n, rows in data.items()}
            if any(s["tune"]["false"] > MAX_FALSE.get(n, 0.05) for n, s in stats.items()):
                continue
            loss = (statistics.mean((1 - s["tune"]["abstention"]) + 2 * s["tune"]["false"]
                                    for s in stats.values()),
                    round(abs(threshold - SHARED_FLOOR), 2))
            if best is None or loss < best[0]:
                best = (loss, weights, threshold, stats)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", help="write the result as Markdown to this file")
    parser.add_argument("--subjects", default="aws,dl")
    parser.add_argument("--cache", help="pickle of the prepared candidates (reused when it "
                        "exists: delete it after changing retrieval or the datasets)")
    args = parser.parse_args()
    data = {}
    if args.cache and Path(args.cache).is_file():
        data = pickle.loads(Path(args.cache).read_bytes())
    for name in args.subjects.split(","):
        if name in data:
            continue
        dataset, notes = SUBJECTS[name]
        if not notes.is_dir() or not dataset.is_file():
            print(f"skipping {name}: {notes} or {dataset} missing", file=sys.stderr)
            continue
        data[name] = prepare(name, dataset, notes)
    if args.cache:
        Path(args.cache).write_bytes(pickle.dumps(data))
    default = ComposeParams()
    lines = ["# Composer and abstention fit (tune halves only)", "",
             f"Subjects: {', '.join(data)}. Objective: mean tune must-facts over subjects "
             f"(median words <= {MAX_MEDIAN_WORDS}); abstention: missed + 2 x false on tune, false <= "
             f"{MAX_FALSE} per subject.", ""]

    def row(label, stats):
        return f"| {label} | " + " | ".join(
            f"{s['tune']['must']:.3f} / {s['test']['must']:.3f} ({s['tune']['words']:.0f}w)"
            for s in stats.values()) + " |"

    head = "| params | " + " | ".join(f"{n} must tune / test (words)" for n in data) + " |"
    lines += [head, "|---|" + "---|" * len(data)]
    lines.append(row("current defaults", {n: answer_stats(r, default) for n, r in data.items()}))
    best, results = sweep_composer(data)
    for objective, params, stats in results[:8]:
        changed = {k: getattr(params, k) for k in GRID}
        lines.append(row(f"{changed}", stats))
    lines += ["", f"Chosen: `{ {k: getattr(best, k) for k in GRID} }`", ""]
    ab = sweep_abstention(data, best.max_passages)
    if ab:
        _, weights, threshold, stats = ab
        lines += [f"Abstention: weights {weights}, threshold {threshold:.2f}", "",
                  "| subject | abstention tune / test | false abstention tune / test |",
                  "|---|---|---|",
                  *(f"| {n} | {s['tune']['abstention']:.3f} / {s['test']['abstention']:.3f} | "
                    f"{s['tune']['false']:.3f} / {s['test']['false']:.3f} |"
                    for n, s in stats.items())]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
