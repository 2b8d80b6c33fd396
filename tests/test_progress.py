"""Progress database: Leitner scheduling, persistence across restarts, concurrent writers."""

from __future__ import annotations

import multiprocessing
import sqlite3

from rag.progress import BOX_DAYS, DAY, Progress, next_box


def test_leitner_boxes_move_up_on_right_and_back_to_one_on_wrong(tmp_path):
    p = Progress(tmp_path / "p.sqlite3")
    now = 1_000_000.0
    card = p.record("q1", "S3", chosen=0, correct=0, now=now)
    assert card.box == 2 and card.due_at == now + BOX_DAYS[2] * DAY
    card = p.record("q1", "S3", chosen=0, correct=0, now=now + DAY)
    assert card.box == 3
    card = p.record("q1", "S3", chosen=1, correct=0, now=now + 5 * DAY)
    assert card.box == 1 and card.due_at == now + 5 * DAY  # missed: due again right away
    assert [next_box(b, True) for b in range(1, 6)] == [2, 3, 4, 5, 5]


def test_due_lists_missed_questions_first_and_respects_dates(tmp_path):
    p = Progress(tmp_path / "p.sqlite3")
    now = 2_000_000.0
    p.record("right", "EC2", 2, 2, now=now, question_json='{"id": "right"}')
    p.record("wrong", "EC2", 1, 2, now=now, question_json='{"id": "wrong"}')
    assert [c.question_id for c in p.due(now=now)] == ["wrong"]
    later = [c.question_id for c in p.due(now=now + 2 * DAY)]
    assert later == ["wrong", "right"]  # lowest box first
    assert p.card("wrong").question_json == '{"id": "wrong"}'


def test_progress_persists_across_restarts(tmp_path):
    path = tmp_path / "home" / "progress.sqlite3"
    first = Progress(path)
    first.record("a", "S3", 0, 0)
    first.record("b", "S3", 1, 0)
    first.record("c", "IAM", 3, 3)
    del first
    again = Progress(path)
    scores = {s.topic: s for s in again.scores()}
    assert scores["S3"].attempts == 2 and scores["S3"].correct == 1
    assert scores["IAM"].accuracy == 1.0
    assert again.weak_topics() == ["S3"]
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def _writer(path: str, worker: int, count: int) -> None:
    p = Progress(path)
    for i in range(count):
        p.record(f"w{worker}-q{i % 7}", f"topic{worker}", i % 4, 0)


def test_two_processes_write_concurrently_without_losing_attempts(tmp_path):
    path = str(tmp_path / "p.sqlite3")
    Progress(path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 60)) for w in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    p = Progress(path)
    assert p.attempts() == 120
    assert {s.topic: s.attempts for s in p.scores()} == {"topic0": 60, "topic1": 60}
