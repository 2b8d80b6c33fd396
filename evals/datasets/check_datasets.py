#!/usr/bin/env python3
"""Validate the hand-written evaluation datasets against the note corpus.

Usage:
    python evals/datasets/check_datasets.py [CORPUS_DIR]

CORPUS_DIR defaults to "corpus" (relative to the current directory). The datasets are read
from the folder this script lives in. Standard library only.

Checks
------
dev.jsonl
    * JSON parses, required keys and types, unique ids
    * answerable items have 1+ gold entries and 1-3 ``must`` groups; unanswerable items have
      ``gold == []`` and ``must == []``
    * every gold ``quote`` is 20-150 chars, has no leading bullet/indent, and is a substring of
      ONE line of the named corpus file (warning when it occurs more than once in the file)
    * every ``must`` group has at least one alternative that occurs (case-insensitively) in the
      gold file(s); warning when none occurs near (+-25 lines of) a gold line
    * minimums: >= 60 items, >= 6 answerable items per corpus file, >= 10 unanswerable,
      >= 10 two-passage items (2+ gold entries)
explain_dev.jsonl
    * options A-D, chosen != correct, both in options, gold/must as above, >= 14 items
verifier_pairs.jsonl
    * passage_quote occurs verbatim in the file (may span lines), kind/supported consistent,
      >= 50 items
user sets (``--set FILE --notes DIR``; aws_users.jsonl, dl_users.jsonl)
    * the dev.jsonl schema plus ``topic``; gold quotes verbatim on one line of a notes file
    * no question shares a run of 5 or more consecutive words with the notes (the set is
      written the way students ask, not in the notes' words)
    * ``split`` is the fixed tune/test half given by a hash of the id
injection.jsonl
    * note has a markdown heading and 2-4 bullets, canary non-empty and absent from the real
      corpus (case-insensitive), >= 20 items
Exit status is 1 when any error is found, 0 otherwise.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

BULLET_CHARS = "•○§□®◊}▪\t "
SUPPORTED_KINDS = {"verbatim", "paraphrase"}
UNSUPPORTED_KINDS = {"wrong_number", "wrong_service", "unrelated", "negation", "partial"}
NEAR_LINES = 25

errors: list[str] = []
warnings: list[str] = []


def err(msg: str) -> None:
    errors.append(msg)


def warn(msg: str) -> None:
    warnings.append(msg)


def split_of(item_id: str) -> str:
    """The fixed half of an item: tune or test, by a hash of its id (never chosen by hand)."""
    return "tune" if hashlib.sha1(item_id.encode()).digest()[0] % 2 == 0 else "test"


WORD = re.compile(r"[a-z0-9]+")
RUN = 5


def word_runs(text: str, n: int = RUN) -> set[tuple[str, ...]]:
    words = WORD.findall(text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def load_corpus(folder: str) -> dict[str, dict]:
    corpus: dict[str, dict] = {}
    if not os.path.isdir(folder):
        print(f"FATAL: corpus folder not found: {folder}")
        sys.exit(2)
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".md") or name.lower() == "readme.md":
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as fh:
            text = fh.read()
        lines = text.split("\n")
        corpus[name] = {"text": text, "lines": lines, "lower": text.lower()}
    if not corpus:
        print(f"FATAL: no .md files in {folder}")
        sys.exit(2)
    return corpus


def load_jsonl(name: str) -> list[dict]:
    path = name if os.path.isabs(name) or os.path.exists(name) else os.path.join(HERE, name)
    rows: list[dict] = []
    if not os.path.exists(path):
        err(f"{name}: file missing")
        return rows
    with open(path, encoding="utf-8") as fh:
        for n, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                err(f"{name}:{n}: JSON error: {exc}")
                continue
            if not isinstance(obj, dict):
                err(f"{name}:{n}: not a JSON object")
                continue
            obj["_line"] = n
            rows.append(obj)
    return rows


def where(name: str, row: dict) -> str:
    return f"{name}:{row.get('_line')}:{row.get('id', '?')}"


def check_keys(name: str, row: dict, spec: dict[str, type | tuple]) -> bool:
    ok = True
    for key, typ in spec.items():
        if key not in row:
            err(f"{where(name, row)}: missing key {key!r}")
            ok = False
        elif not isinstance(row[key], typ):
            err(f"{where(name, row)}: key {key!r} has type {type(row[key]).__name__}")
            ok = False
    return ok


def check_unique_ids(name: str, rows: list[dict]) -> None:
    counts = collections.Counter(r.get("id") for r in rows)
    for rid, c in counts.items():
        if c > 1:
            err(f"{name}: duplicate id {rid!r} ({c}x)")


def quote_line_numbers(corpus: dict, file: str, quote: str) -> list[int]:
    return [i for i, line in enumerate(corpus[file]["lines"]) if quote in line]


def check_gold(name: str, row: dict, corpus: dict) -> list[tuple[str, list[int]]]:
    """Validate gold entries; return [(file, [line indexes])] for the must-check."""
    located: list[tuple[str, list[int]]] = []
    gold = row.get("gold", [])
    if not isinstance(gold, list):
        err(f"{where(name, row)}: gold must be a list")
        return located
    for g in gold:
        if not isinstance(g, dict) or set(g) != {"file", "quote"}:
            err(f"{where(name, row)}: gold entry must be {{file, quote}}: {g!r}")
            continue
        file, quote = g["file"], g["quote"]
        if file not in corpus:
            err(f"{where(name, row)}: unknown gold file {file!r}")
            continue
        if not isinstance(quote, str) or not (20 <= len(quote) <= 150):
            err(f"{where(name, row)}: quote length {len(quote) if isinstance(quote, str) else '?'} "
                f"not in 20-150: {quote!r}")
            continue
        if "\n" in quote:
            err(f"{where(name, row)}: quote spans lines: {quote!r}")
            continue
        if quote[0] in BULLET_CHARS or quote.startswith(("- ", "+ ", "* ")):
            err(f"{where(name, row)}: quote starts with bullet/indent: {quote!r}")
        hits = quote_line_numbers(corpus, file, quote)
        if not hits:
            err(f"{where(name, row)}: quote not found on any single line of {file}: {quote!r}")
            continue
        total = corpus[file]["text"].count(quote)
        if total > 1:
            warn(f"{where(name, row)}: quote occurs {total}x in {file}: {quote!r}")
        located.append((file, hits))
    return located


def check_must(name: str, row: dict, corpus: dict, located: list[tuple[str, list[int]]]) -> None:
    must = row.get("must", [])
    if not isinstance(must, list):
        err(f"{where(name, row)}: must must be a list")
        return
    for grp in must:
        if not isinstance(grp, list) or not grp or not all(isinstance(a, str) and a.strip() for a in grp):
            err(f"{where(name, row)}: bad must group {grp!r}")
            continue
        for alt in grp:
            if len(alt.split()) > 4:
                warn(f"{where(name, row)}: long must alternative ({len(alt.split())} words): {alt!r}")
        if not located:
            continue
        anywhere = any(a.lower() in corpus[f]["lower"] for f, _ in located for a in grp)
        if not anywhere:
            err(f"{where(name, row)}: no alternative of must group {grp!r} occurs in gold file(s)")
            continue
        near = False
        for f, hits in located:
            lines = corpus[f]["lines"]
            for h in hits:
                window = "\n".join(lines[max(0, h - NEAR_LINES): h + NEAR_LINES + 1]).lower()
                if any(a.lower() in window for a in grp):
                    near = True
        if not near:
            warn(f"{where(name, row)}: must group {grp!r} not found within {NEAR_LINES} lines of a gold quote")


def check_evidence(name: str, row: dict, corpus: dict, per_file: collections.Counter) -> None:
    """An item that needs evidence: gold quotes found, 1-3 must groups that the gold (or the
    notes) contain; counts the item once for each file its gold is in."""
    if not row["gold"]:
        err(f"{where(name, row)}: no gold")
    if not (1 <= len(row["must"]) <= 3):
        err(f"{where(name, row)}: needs 1-3 must groups")
    located = check_gold(name, row, corpus)
    check_must(name, row, corpus, located)
    for f in sorted({g["file"] for g in row["gold"] if isinstance(g, dict) and "file" in g}):
        per_file[f] += 1


def check_dev(corpus: dict) -> dict:
    name = "dev.jsonl"
    rows = load_jsonl(name)
    check_unique_ids(name, rows)
    per_file = collections.Counter()
    stats = collections.Counter()
    for row in rows:
        if not check_keys(name, row, {"id": str, "question": str, "answerable": bool,
                                      "gold": list, "must": list}):
            continue
        extra = set(row) - {"id", "question", "answerable", "gold", "must", "_line"}
        if extra:
            warn(f"{where(name, row)}: extra keys {sorted(extra)}")
        if not row["question"].strip():
            err(f"{where(name, row)}: empty question")
        stats["total"] += 1
        if row["answerable"]:
            stats["answerable"] += 1
            check_evidence(name, row, corpus, per_file)
            if len(row["gold"]) >= 2:
                stats["two_passage"] += 1
                if len(row["must"]) < 2:
                    warn(f"{where(name, row)}: two-passage item with a single must group")
                if len({g.get('file') for g in row['gold']}) >= 2:
                    stats["two_passage_cross_file"] += 1
        else:
            stats["unanswerable"] += 1
            if row["gold"] or row["must"]:
                err(f"{where(name, row)}: unanswerable item must have empty gold and must")
    if stats["total"] < 60:
        err(f"{name}: only {stats['total']} items (need >= 60)")
    for f in corpus:
        if per_file[f] < 6:
            err(f"{name}: only {per_file[f]} answerable items with gold in {f} (need >= 6)")
    if stats["unanswerable"] < 10:
        err(f"{name}: only {stats['unanswerable']} unanswerable items (need >= 10)")
    if stats["two_passage"] < 10:
        err(f"{name}: only {stats['two_passage']} two-passage items (need >= 10)")
    return {"stats": stats, "per_file": per_file}


def check_explain(corpus: dict) -> dict:
    name = "explain_dev.jsonl"
    rows = load_jsonl(name)
    check_unique_ids(name, rows)
    per_file = collections.Counter()
    chosen_letters = collections.Counter()
    correct_letters = collections.Counter()
    for row in rows:
        if not check_keys(name, row, {"id": str, "question": str, "options": dict, "chosen": str,
                                      "correct": str, "gold": list, "must": list}):
            continue
        opts = row["options"]
        if sorted(opts) != ["A", "B", "C", "D"]:
            err(f"{where(name, row)}: options must be exactly A-D, got {sorted(opts)}")
        for k, v in opts.items():
            if not isinstance(v, str) or not v.strip():
                err(f"{where(name, row)}: option {k} empty")
        if len(set(opts.values())) != len(opts):
            err(f"{where(name, row)}: duplicate option texts")
        if row["chosen"] not in opts or row["correct"] not in opts:
            err(f"{where(name, row)}: chosen/correct not among options")
        if row["chosen"] == row["correct"]:
            err(f"{where(name, row)}: chosen == correct")
        check_evidence(name, row, corpus, per_file)
        chosen_letters[row["chosen"]] += 1
        correct_letters[row["correct"]] += 1
    if len(rows) < 14:
        err(f"{name}: only {len(rows)} items (need >= 14)")
    return {"count": len(rows), "per_file": per_file, "chosen": chosen_letters,
            "correct": correct_letters}


def check_verifier(corpus: dict) -> dict:
    name = "verifier_pairs.jsonl"
    rows = load_jsonl(name)
    check_unique_ids(name, rows)
    kinds = collections.Counter()
    supported = collections.Counter()
    per_file = collections.Counter()
    for row in rows:
        if not check_keys(name, row, {"id": str, "sentence": str, "file": str,
                                      "passage_quote": str, "supported": bool, "kind": str}):
            continue
        if row["file"] not in corpus:
            err(f"{where(name, row)}: unknown file {row['file']!r}")
            continue
        pq = row["passage_quote"]
        if len(pq.split()) < 3:
            err(f"{where(name, row)}: passage_quote too short: {pq!r}")
        if pq not in corpus[row["file"]]["text"]:
            err(f"{where(name, row)}: passage_quote not verbatim in {row['file']}: {pq[:80]!r}")
        kind = row["kind"]
        if kind in SUPPORTED_KINDS:
            if not row["supported"]:
                err(f"{where(name, row)}: kind {kind} but supported=false")
        elif kind in UNSUPPORTED_KINDS:
            if row["supported"]:
                err(f"{where(name, row)}: kind {kind} but supported=true")
        else:
            err(f"{where(name, row)}: unknown kind {kind!r}")
        if not row["sentence"].strip():
            err(f"{where(name, row)}: empty sentence")
        if kind == "verbatim" and row["sentence"].strip().rstrip(".") not in pq and \
                row["sentence"].strip() not in pq:
            warn(f"{where(name, row)}: verbatim sentence is not a substring of its passage_quote")
        kinds[kind] += 1
        supported[row["supported"]] += 1
        per_file[row["file"]] += 1
    if len(rows) < 50:
        err(f"{name}: only {len(rows)} items (need >= 50)")
    return {"count": len(rows), "kinds": kinds, "supported": supported, "per_file": per_file}


def check_injection(corpus: dict) -> dict:
    name = "injection.jsonl"
    rows = load_jsonl(name)
    check_unique_ids(name, rows)
    in_note = 0
    for row in rows:
        if not check_keys(name, row, {"id": str, "note": str, "question": str, "canary": str}):
            continue
        note, canary = row["note"], row["canary"]
        lines = note.split("\n")
        if not any(l.startswith("#") for l in lines):
            err(f"{where(name, row)}: note has no markdown heading")
        bullets = [l for l in lines if l.lstrip().startswith(("- ", "* "))]
        if not (2 <= len(bullets) <= 4):
            err(f"{where(name, row)}: note has {len(bullets)} bullets (need 2-4)")
        if not canary.strip():
            err(f"{where(name, row)}: empty canary")
            continue
        for f, data in corpus.items():
            if canary.lower() in data["lower"]:
                err(f"{where(name, row)}: canary {canary!r} occurs in corpus file {f}")
        if canary.lower() in note.lower():
            in_note += 1
        if "canary_in_note" in row and row["canary_in_note"] != (canary.lower() in note.lower()):
            err(f"{where(name, row)}: canary_in_note flag is wrong")
        if not row["question"].strip():
            err(f"{where(name, row)}: empty question")
    if len(rows) < 20:
        err(f"{name}: only {len(rows)} items (need >= 20)")
    return {"count": len(rows), "canary_in_note": in_note}


def check_user_set(path: str, corpus: dict, min_answerable: int, min_unanswerable: int) -> dict:
    """A set written the way students ask: dev schema + topic, no 5-word run from the notes."""
    name = os.path.basename(path)
    rows = load_jsonl(path)
    check_unique_ids(name, rows)
    runs: set[tuple[str, ...]] = set()
    for f in corpus.values():
        runs |= word_runs(f["text"])
    stats = collections.Counter()
    per_file = collections.Counter()
    for row in rows:
        if not check_keys(name, row, {"id": str, "question": str, "answerable": bool,
                                      "gold": list, "must": list, "topic": str}):
            continue
        shared = word_runs(row["question"]) & runs
        if shared:
            err(f"{where(name, row)}: question shares words with the notes: "
                f"{' '.join(sorted(shared)[0])!r}")
        stats["total"] += 1
        stats[split_of(row["id"])] += 1
        if row["answerable"]:
            stats["answerable"] += 1
            check_evidence(name, row, corpus, per_file)
        else:
            stats["unanswerable"] += 1
            if row["gold"] or row["must"]:
                err(f"{where(name, row)}: unanswerable item must have empty gold and must")
    if stats["answerable"] < min_answerable:
        err(f"{name}: only {stats['answerable']} answerable items (need >= {min_answerable})")
    if stats["unanswerable"] < min_unanswerable:
        err(f"{name}: only {stats['unanswerable']} unanswerable items "
            f"(need >= {min_unanswerable})")
    return {"stats": stats, "per_file": per_file}


def main_user_set(args: list[str]) -> int:
    """``--set FILE --notes DIR [--min A U]``: check one user-style set against its notes."""
    opts = dict(zip(args[::2], args[1::2]))
    if "--set" not in opts or "--notes" not in opts:
        print("usage: check_datasets.py --set FILE --notes DIR [--min ANSWERABLE,UNANSWERABLE]")
        return 2
    path, notes = opts["--set"], opts["--notes"]
    minimum = [int(x) for x in opts.get("--min", "0,0").split(",")]
    res = check_user_set(path, load_corpus(notes), *minimum)
    s = res["stats"]
    print(f"{path}: {s['total']} items | answerable {s['answerable']} | "
          f"unanswerable {s['unanswerable']} | tune {s['tune']} | test {s['test']}")
    for w in warnings:
        print("  WARN  " + w)
    for e in errors:
        print("  ERROR " + e)
    print("FAILED" if errors else "OK")
    return 1 if errors else 0


def main() -> int:
    if "--set" in sys.argv:
        return main_user_set(sys.argv[1:])
    corpus_dir = sys.argv[1] if len(sys.argv) > 1 else "corpus"
    corpus = load_corpus(corpus_dir)
    dev = check_dev(corpus)
    exp = check_explain(corpus)
    ver = check_verifier(corpus)
    inj = check_injection(corpus)

    print(f"corpus: {corpus_dir} ({len(corpus)} files)")
    s = dev["stats"]
    print(f"\ndev.jsonl: {s['total']} items | answerable {s['answerable']} | "
          f"unanswerable {s['unanswerable']} | two-passage {s['two_passage']} "
          f"(cross-file {s['two_passage_cross_file']})")
    for f in corpus:
        print(f"  {f:45s} {dev['per_file'][f]:3d} answerable items with gold here")
    print(f"\nexplain_dev.jsonl: {exp['count']} items | chosen letters {dict(sorted(exp['chosen'].items()))} "
          f"| correct letters {dict(sorted(exp['correct'].items()))}")
    for f in corpus:
        print(f"  {f:45s} {exp['per_file'][f]:3d}")
    print(f"\nverifier_pairs.jsonl: {ver['count']} pairs | supported {ver['supported'][True]} | "
          f"unsupported {ver['supported'][False]}")
    print("  kinds: " + ", ".join(f"{k}={v}" for k, v in sorted(ver["kinds"].items())))
    for f in corpus:
        print(f"  {f:45s} {ver['per_file'][f]:3d}")
    print(f"\ninjection.jsonl: {inj['count']} items | canary literally in note: {inj['canary_in_note']}")

    if warnings:
        print(f"\n{len(warnings)} warning(s):")
        for w in warnings:
            print("  WARN  " + w)
    if errors:
        print(f"\n{len(errors)} error(s):")
        for e in errors:
            print("  ERROR " + e)
        print("\nFAILED")
        return 1
    print("\nOK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
