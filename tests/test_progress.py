"""Progress database: FSRS scheduling, migration of Leitner databases, persistence across
restarts, concurrent writers."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import sqlite3

import pytest
from fsrs import Rating, State

from rag.errors import InputError
from rag.progress import SCHEMA_VERSION, Progress, end_of_day, when

DAY = 86400.0
NOON = dt.datetime(2026, 3, 10, 12, 0).timestamp()  # local noon: "today" has room both sides


def test_wrong_is_again_right_is_good_and_intervals_grow(tmp_path):
    p = Progress(tmp_path / "p.sqlite3")
    card = p.record("q1", "S3", chosen=1, correct=0, now=NOON)
    assert card.last_rating == Rating.Again and card.missed
    assert card.state == State.Learning and card.due_at == NOON + 600  # back in 10 minutes
    card = p.record("q1", "S3", chosen=0, correct=0, now=NOON + 600)
    assert card.last_rating == Rating.Good and card.state == State.Review
    first = card.due_at - (NOON + 600)
    assert DAY <= first <= 3 * DAY
    card = p.record("q1", "S3", chosen=0, correct=0, now=card.due_at)
    assert card.due_at - card.last_review > first  # remembered again: a longer interval
    card = p.record("q1", "S3", chosen=2, correct=0, now=card.due_at)
    assert card.state == State.Relearning and card.due_at - card.last_review == 600
    with sqlite3.connect(p.path) as conn:
        ratings = [r[0] for r in conn.execute("SELECT rating FROM attempts ORDER BY id")]
    assert ratings == [Rating.Again, Rating.Good, Rating.Good, Rating.Again]


def test_self_rating_hard_and_easy_change_the_interval(tmp_path):
    p = Progress(tmp_path / "p.sqlite3")
    got = {name: p.record(f"q-{name}", "EC2", 0, 0, now=NOON, rating=name).due_at - NOON
           for name in ("hard", "good", "easy")}
    assert got["hard"] < got["good"] < got["easy"]
    with pytest.raises(InputError):
        p.record("q-x", "EC2", 1, 0, now=NOON, rating="easy")  # a wrong answer is Again
    with pytest.raises(InputError):
        p.record("q-x", "EC2", 0, 0, now=NOON, rating="brilliant")
    assert p.attempts() == 3  # the refused ones stored nothing


def test_rate_changes_the_latest_answer_only(tmp_path):
    p = Progress(tmp_path / "p.sqlite3")
    good = p.record("q1", "IAM", 0, 0, now=NOON)
    easy = p.rate("q1", "easy")
    assert easy.last_rating == Rating.Easy and easy.due_at > good.due_at
    assert easy.last_review == good.last_review  # the same answer, re-rated, not a new one
    assert p.attempts() == 1
    again = p.rate("q1", "again")  # "I guessed"
    assert again.missed and again.due_at == NOON + 600
    p.record("q2", "IAM", 3, 0, now=NOON)
    with pytest.raises(InputError):
        p.rate("q2", "good")  # wrong stays wrong
    with pytest.raises(InputError):
        p.rate("never-answered", "good")


def test_due_today_lists_missed_questions_first_and_respects_dates(tmp_path):
    p = Progress(tmp_path / "p.sqlite3")
    p.record("right", "EC2", 2, 2, now=NOON, question_json='{"id": "right"}')
    p.record("wrong", "EC2", 1, 2, now=NOON, question_json='{"id": "wrong"}')
    assert [c.question_id for c in p.due(now=NOON)] == ["wrong"]  # due in 10 min = today
    assert [s.due for s in p.scores(now=NOON)] == [1]
    later = [c.question_id for c in p.due(now=NOON + 5 * DAY)]
    assert later == ["wrong", "right"]  # the likelier forgotten first
    assert p.card("wrong").question_json == '{"id": "wrong"}'
    assert p.next_due(now=NOON) == p.card("right").due_at
    assert p.to_json(now=NOON)["due_today"] == 1
    assert end_of_day(NOON) - NOON == 12 * 3600
    assert when(NOON + 600, NOON) == "in 10 minutes" and when(NOON, NOON) == "now"


# --- migration from the Leitner schema (the SQL and record() of the code it replaces) --------
LEITNER_SQL = """
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    question_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    chosen INTEGER NOT NULL,
    correct INTEGER NOT NULL,
    is_correct INTEGER NOT NULL,
    answered_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_topic ON attempts(topic);
CREATE TABLE IF NOT EXISTS cards (
    question_id TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    box INTEGER NOT NULL,
    due_at REAL NOT NULL,
    question_json TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS cards_due ON cards(due_at);
"""
BOX_DAYS = {1: 0.0, 2: 1.0, 3: 3.0, 4: 7.0, 5: 21.0}


def _leitner_record(conn, qid, topic, chosen, correct, now, question_json):
    """What the Leitner Progress.record wrote (one attempt, the card moved one box)."""
    ok = chosen == correct
    conn.execute("INSERT INTO attempts(question_id, topic, chosen, correct, is_correct, "
                 "answered_at) VALUES (?, ?, ?, ?, ?, ?)", (qid, topic, chosen, correct, int(ok),
                                                            now))
    row = conn.execute("SELECT box FROM cards WHERE question_id = ?", (qid,)).fetchone()
    box = (min(row[0] + 1, 5) if ok else 1) if row else (2 if ok else 1)
    conn.execute("INSERT INTO cards(question_id, topic, box, due_at, question_json) VALUES "
                 "(?, ?, ?, ?, ?) ON CONFLICT(question_id) DO UPDATE SET box = excluded.box, "
                 "due_at = excluded.due_at, topic = excluded.topic, question_json = "
                 "excluded.question_json", (qid, topic, box, now + BOX_DAYS[box] * DAY,
                                            question_json))


def _leitner_db(path):
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(LEITNER_SQL)
    history = [  # (question, topic, chosen, correct, day)
        ("always-right", "S3", 0, 0, 0), ("always-right", "S3", 1, 1, 1),
        ("always-right", "S3", 2, 2, 4),
        ("missed-last", "S3", 0, 0, 0), ("missed-last", "S3", 3, 1, 2),
        ("once-wrong", "IAM", 2, 0, 3),
        ("recovered", "IAM", 1, 0, 1), ("recovered", "IAM", 0, 0, 2),
    ]
    start = NOON - 6 * DAY + 0.123456789  # sub-microsecond digits must survive too
    for qid, topic, chosen, correct, day in history:
        _leitner_record(conn, qid, topic, chosen, correct, start + day * DAY,
                        json.dumps({"id": qid, "stem": f"Question {qid}?"}))
    conn.close()


def _snapshot(path):
    with sqlite3.connect(path) as conn:
        attempts = conn.execute("SELECT id, question_id, topic, chosen, correct, is_correct, "
                                "answered_at FROM attempts ORDER BY id").fetchall()
        cards = conn.execute("SELECT question_id, topic, due_at, question_json FROM cards "
                             "ORDER BY question_id").fetchall()
    return attempts, cards


def test_leitner_database_migrates_without_loss(tmp_path):
    path = tmp_path / "progress.sqlite3"
    _leitner_db(path)
    attempts_before, cards_before = _snapshot(path)
    assert len(attempts_before) == 8 and len(cards_before) == 4
    with sqlite3.connect(path) as conn:
        due_before = {t: {q for (q,) in conn.execute(
            "SELECT question_id FROM cards WHERE due_at < ?", (end_of_day(t),))}
            for t in (NOON - 2 * DAY, NOON, NOON + 3 * DAY, NOON + 30 * DAY)}

    p = Progress(path)  # the migration runs here
    attempts_after, cards_after = _snapshot(path)
    assert attempts_after == attempts_before  # every attempt, unchanged
    assert cards_after == cards_before  # topic, question and promised due time kept
    for t, expected in due_before.items():
        assert {c.question_id for c in p.due(now=t)} == expected
    scores = {s.topic: (s.attempts, s.correct) for s in p.scores()}
    assert scores == {"S3": (5, 4), "IAM": (3, 1)}
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        ratings = dict(conn.execute("SELECT id, rating FROM attempts"))
        assert [ratings[a[0]] for a in attempts_before] == [
            Rating.Good if a[5] else Rating.Again for a in attempts_before]
        assert "box" not in {r[1] for r in conn.execute("PRAGMA table_info(cards)")}

    # The memory state is the history replayed through FSRS.
    right, missed = p.card("always-right"), p.card("missed-last")
    assert right.state == State.Review and not right.missed
    assert right.stability > p.card("recovered").stability  # three rights beat one
    assert missed.missed and missed.state == State.Relearning
    assert p.card("once-wrong").state == State.Learning
    assert abs(right.last_review - (NOON - 2 * DAY + 0.123456789)) < 1e-5

    # Opening again is a no-op; new answers go on from the migrated state.
    Progress(path)
    assert _snapshot(path) == (attempts_after, cards_after)
    card = p.record("missed-last", "S3", 1, 1, now=NOON)
    assert card.state == State.Review and p.attempts() == 9
    with pytest.raises(InputError):
        p.rate("always-right", "easy")  # a Leitner-era answer keeps its rating


def test_fresh_database_has_the_current_schema(tmp_path):
    p = Progress(tmp_path / "new.sqlite3")
    with sqlite3.connect(p.path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert p.cards() == [] and p.due() == [] and p.next_due() is None


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
    assert [c.question_id for c in again.cards("s3")] == ["a", "b"]
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
        proc.join(180)  # generous: the suite may share two cores with other jobs
        assert proc.exitcode == 0
    p = Progress(path)
    assert p.attempts() == 120
    assert {s.topic: s.attempts for s in p.scores()} == {"topic0": 60, "topic1": 60}


def _opener(path: str) -> None:
    Progress(path).record("after", "S3", 0, 0)


def test_two_processes_opening_a_leitner_database_migrate_it_once(tmp_path):
    path = tmp_path / "p.sqlite3"
    _leitner_db(path)
    attempts_before, cards_before = _snapshot(path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_opener, args=(str(path),)) for _ in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(180)  # generous: the suite may share two cores with other jobs
        assert proc.exitcode == 0
    attempts, cards = _snapshot(path)
    assert attempts[:8] == attempts_before and len(attempts) == 10
    assert [c for c in cards if c[0] != "after"] == cards_before
