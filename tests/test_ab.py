"""The blind A/B judging helper: the judges never see which version wrote a question, and a
question both versions wrote is no duplicate of itself."""

import json

from evals.ab import count, mix


def _question(qid, kind="true-false", topic="Lambda"):
    return {"subject": "aws", "topic": topic, "id": qid, "kind": kind, "stem": f"Stem {qid}?",
            "options": {"A": "True", "B": "False"}, "answer": "A"}


def test_mixed_questions_hide_their_version_and_count_back(tmp_path):
    old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    old.write_text("".join(json.dumps(q) + "\n" for q in [_question("a"), _question("b")]
                           + [{"subject": "aws", "topic": "SQS", "error": "too little"}]))
    new.write_text("".join(json.dumps(q) + "\n" for q in [
        _question("a"), _question("c", "which-fits", "SQS"), _question("d")]))
    folder = tmp_path / "ab"
    assert mix(old, new, folder) == {"old": 2, "new": 3}
    mixed = [json.loads(line) for line in (folder / "quiz_outputs_mixed.jsonl").open()]
    assert len(mixed) == 5 and not any("kind" in q for q in mixed)
    assert all(q["id"].startswith("q") and q["id"] not in "abcd" for q in mixed)
    key = json.loads((folder / "quiz_key.json").read_text())
    by_original = {(v, oid): rid for rid, (v, oid) in key.items()}
    labels = []
    for rid, (version, oid) in key.items():
        good = oid != "b"
        dup = by_original[("new", "a")] if (version, oid) == ("new", "d") else \
            by_original[("old", "a")] if (version, oid) == ("new", "a") else None
        labels.append({"id": rid, "single_correct": good, "clear": True, "useful": True,
                       "on_topic": True, "duplicate_of": dup})
    (folder / "quiz_labels_mixed.jsonl").write_text("".join(json.dumps(x) + "\n" for x in labels))
    figures = count(folder)
    assert figures["old"]["good"] == 1 and figures["old"]["judged"] == 2
    # "a" in new repeats old's "a" (another version: not a duplicate); "d" repeats new's "a"
    assert figures["new"]["good"] == 2 and figures["new"]["failed"]["duplicate"] == 1
    assert figures["new"]["topics"] == 2 and figures["new"]["kinds"]["which-fits"] == [1, 1]
    unmixed = [json.loads(line) for line in (folder / "quiz_labels_new.jsonl").open()]
    assert {x["id"] for x in unmixed} == {"a", "c", "d"}
    assert next(x for x in unmixed if x["id"] == "d")["duplicate_of"] == "a"


def test_mixed_explanations_count_back_per_version(tmp_path):
    from evals.ab import count_explain

    def explanation(xid):
        return {"id": xid, "question": f"Q {xid}?", "chosen": "A", "key": "B"}

    old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    old.write_text("".join(json.dumps(explanation(x)) + "\n" for x in ("x1", "x2")))
    new.write_text("".join(json.dumps(explanation(x)) + "\n" for x in ("x1", "x2")))
    folder = tmp_path / "ab"
    assert mix(old, new, folder, what="explain") == {"old": 2, "new": 2}
    key = json.loads((folder / "explain_key.json").read_text())
    labels = [{"id": rid, "score": 4 if version == "new" else 2, "misleading": version == "old",
               "chosen_reason": "partly" if oid == "x1" else "no", "correct_reason": "yes",
               "readable": True} for rid, (version, oid) in key.items()]
    (folder / "explain_labels_mixed.jsonl").write_text(
        "".join(json.dumps(x) + "\n" for x in labels))
    figures = count_explain(folder)
    assert figures["new"] == {"judged": 2, "score": 4.0, "misleading": 0, "chosen_reason": 0.5,
                              "correct_reason": 1.0, "readable": 1.0}
    assert figures["old"]["misleading"] == 2 and figures["old"]["score"] == 2.0
    assert {x["id"] for x in map(json.loads, (folder / "explain_labels_old.jsonl").open())} \
        == {"x1", "x2"}
