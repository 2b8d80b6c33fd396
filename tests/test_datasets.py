"""The evaluation sets are valid: verbatim gold, student wording, fixed tune/test halves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evals.harness import split_of

REPO = Path(__file__).resolve().parent.parent
CHECK = REPO / "evals" / "datasets" / "check_datasets.py"
DL_NOTES = REPO.parent / "shared" / "notes-deep-learning"


def _check(dataset: Path, notes: Path, minimum: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHECK), "--set", str(dataset), "--notes",
                           str(notes), "--min", minimum], capture_output=True, text=True)


def test_aws_user_set_passes_its_checks():
    done = _check(REPO / "evals" / "datasets" / "aws_users.jsonl", REPO / "corpus", "120,15")
    assert done.returncode == 0, done.stdout


def test_deep_learning_user_set_passes_its_checks():
    if not DL_NOTES.is_dir():
        pytest.skip(f"the second subject's notes are not here ({DL_NOTES}): a clone outside "
                    "the workplace has no ../shared")
    done = _check(REPO / "evals" / "datasets" / "dl_users.jsonl", DL_NOTES, "80,10")
    assert done.returncode == 0, done.stdout


def test_a_question_in_the_notes_own_words_is_rejected(tmp_path):
    row = {"id": "x1", "topic": "S3", "question": "Can range from 0 bytes to 5 TB in size?",
           "answerable": True, "gold": [{"file": "solutions-architect-associate-course.md",
                                         "quote": "Can range from 0 bytes to 5 TB in size"}],
           "must": [["5 TB"]]}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(row) + "\n", encoding="utf-8")
    done = _check(bad, REPO / "corpus", "0,0")
    assert done.returncode == 1 and "shares words with the notes" in done.stdout
    row.update(question="Roughly how big can one thing I store in S3 be?",
               gold=[{"file": "solutions-architect-associate-course.md",
                      "quote": "Can range from 0 bytes to 6 TB in size"}])
    bad.write_text(json.dumps(row) + "\n", encoding="utf-8")
    done = _check(bad, REPO / "corpus", "0,0")
    assert done.returncode == 1 and "quote not found" in done.stdout


def test_halves_are_fixed_by_the_id_and_roughly_even():
    rows = [json.loads(line) for line in
            (REPO / "evals" / "datasets" / "aws_users.jsonl").read_text().splitlines()]
    halves = [split_of(r["id"]) for r in rows]
    assert split_of("aws-a001") == split_of("aws-a001")
    assert 0.35 < halves.count("tune") / len(halves) < 0.65
