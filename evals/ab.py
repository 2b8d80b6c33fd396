"""Blind A/B judging of practice questions and explanations: mix two versions' outputs,
count the labels.

``python -m evals.ab mix OLD.jsonl NEW.jsonl FOLDER`` writes ``FOLDER/quiz_outputs_old.jsonl``,
``quiz_outputs_new.jsonl``, the mix with random ids and no ``kind``
(``quiz_outputs_mixed.jsonl``, what the judges see) and ``quiz_key.json`` (random id ->
[version, original id]). After the judges have written ``quiz_labels_mixed.jsonl`` there,
``python -m evals.ab count FOLDER`` unmixes them (``quiz_labels_old.jsonl`` /
``quiz_labels_new.jsonl``) and prints good per version, by kind and by subject. A near-duplicate
counts only against a question of the same version: the two versions share questions.
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path

CRITERIA = ("single_correct", "clear", "useful", "on_topic")
VERSIONS = ("old", "new")


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")


def mix(old: Path, new: Path, folder: Path, seed: int = 0, what: str = "quiz"
        ) -> dict[str, int]:
    """The two versions' outputs (``what``: quiz or explain) in one random order under random
    ids; a question's kind is hidden."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    key, mixed, used = {}, [], set()
    for version, source in zip(VERSIONS, (old, new)):
        rows = [r for r in _rows(source) if "id" in r]  # topics with no question have none
        _write(folder / f"{what}_outputs_{version}.jsonl", rows)
        for row in rows:
            rid = f"q{rng.randrange(100000):05d}"
            while rid in used:
                rid = f"q{rng.randrange(100000):05d}"
            used.add(rid)
            key[rid] = [version, row["id"]]
            mixed.append({k: v for k, v in row.items() if k != "kind"} | {"id": rid})
    rng.shuffle(mixed)
    _write(folder / f"{what}_outputs_mixed.jsonl", mixed)
    (folder / f"{what}_key.json").write_text(json.dumps(key, indent=0), encoding="utf-8")
    return Counter(v for v, _ in key.values())


def count(folder: Path) -> dict[str, dict]:
    """Good questions per version (all four criteria, no same-version duplicate)."""
    key = json.loads((folder / "quiz_key.json").read_text(encoding="utf-8"))
    outputs = {v: {r["id"]: r for r in _rows(folder / f"quiz_outputs_{v}.jsonl") if "id" in r}
               for v in VERSIONS}
    unmixed: dict[str, list[dict]] = {v: [] for v in VERSIONS}
    figures = {v: {"good": 0, "judged": 0, "failed": Counter(), "kinds": defaultdict(
        lambda: [0, 0]), "subjects": defaultdict(lambda: [0, 0])} for v in VERSIONS}
    for label in _rows(folder / "quiz_labels_mixed.jsonl"):
        version, oid = key[label["id"]]
        dup = label.get("duplicate_of")
        same = dup in key and key[dup][0] == version
        unmixed[version].append(label | {"id": oid, "duplicate_of": key[dup][1] if same else None})
        question, f = outputs[version][oid], figures[version]
        good = all(label.get(c) for c in CRITERIA) and not same
        f["good"] += good
        f["judged"] += 1
        f["failed"].update([c for c in CRITERIA if not label.get(c)] + ["duplicate"] * same)
        for table, name in (("kinds", question["kind"]), ("subjects", question["subject"])):
            f[table][name][0] += good
            f[table][name][1] += 1
    for version, rows in unmixed.items():
        _write(folder / f"quiz_labels_{version}.jsonl", rows)
        figures[version]["topics"] = len({q["topic"] for q in outputs[version].values()})
    return figures


def count_explain(folder: Path) -> dict[str, dict]:
    """Per version: explanations judged, mean score, misleading, and the shares with the
    chosen option's reason (yes or partly) and the key's reason (yes)."""
    key = json.loads((folder / "explain_key.json").read_text(encoding="utf-8"))
    labels: dict[str, list[dict]] = {v: [] for v in VERSIONS}
    for label in _rows(folder / "explain_labels_mixed.jsonl"):
        version, oid = key[label["id"]]
        labels[version].append(label | {"id": oid})
    figures = {}
    for version, rows in labels.items():
        _write(folder / f"explain_labels_{version}.jsonl", rows)
        n = len(rows) or 1
        figures[version] = {
            "judged": len(rows),
            "score": round(sum(r["score"] for r in rows) / n, 2),
            "misleading": sum(bool(r["misleading"]) for r in rows),
            "chosen_reason": round(sum(r["chosen_reason"] in ("yes", "partly")
                                       for r in rows) / n, 2),
            "correct_reason": round(sum(r["correct_reason"] == "yes" for r in rows) / n, 2),
            "readable": round(sum(bool(r["readable"]) for r in rows) / n, 2)}
    return figures


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(list(sys.argv[1:] if argv is None else argv))
    except (OSError, ValueError, KeyError) as exc:  # a missing file, a bad line, a stray id
        print(f"evals.ab: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def _run(argv: list[str]) -> int:
    if argv[:1] in (["mix"], ["mix-explain"]) and len(argv) == 4:
        what = "explain" if argv[0] == "mix-explain" else "quiz"
        print(dict(mix(Path(argv[1]), Path(argv[2]), Path(argv[3]), what=what)))
        return 0
    if argv[:1] == ["count-explain"] and len(argv) == 2:
        for version, f in count_explain(Path(argv[1])).items():
            print(f"{version}: {f}")
        return 0
    if argv[:1] == ["count"] and len(argv) == 2:
        for version, f in count(Path(argv[1])).items():
            print(f"{version}: good {f['good']}/{f['judged']}, topics with a question "
                  f"{f['topics']}, failed {dict(f['failed'])}")
            for table in ("kinds", "subjects"):
                print("  " + ", ".join(f"{k} {g}/{n}" for k, (g, n) in sorted(f[table].items())))
        return 0
    print("usage: python -m evals.ab mix|mix-explain OLD.jsonl NEW.jsonl FOLDER | "
          "count|count-explain FOLDER")
    return 2


if __name__ == "__main__":
    sys.exit(main())
