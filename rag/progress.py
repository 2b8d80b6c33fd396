"""Quiz progress in SQLite: attempts, per-topic scores and a Leitner spaced-repetition schedule.

One file in the user's data folder (``settings.progress_db``). WAL mode, a busy timeout and
short ``BEGIN IMMEDIATE`` transactions make it safe for two processes (the CLI and the app)
writing at once; every write is a single transaction, so a crash never leaves half an attempt.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rag.errors import StudyragError

# Leitner boxes 1..5: a right answer moves a card up one box, a wrong one back to box 1.
# A card in box b comes back after BOX_DAYS[b] days.
BOX_DAYS = {1: 0.0, 2: 1.0, 3: 3.0, 4: 7.0, 5: 21.0}
DAY = 86400.0
SCHEMA = """
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


class ProgressError(StudyragError):
    """The progress database cannot be opened or written."""


@dataclass(frozen=True)
class TopicScore:
    topic: str
    attempts: int
    correct: int
    due: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.attempts if self.attempts else 0.0


@dataclass(frozen=True)
class Card:
    question_id: str
    topic: str
    box: int
    due_at: float
    question_json: str


def next_box(box: int, is_correct: bool) -> int:
    return min(box + 1, max(BOX_DAYS)) if is_correct else 1


class Progress:
    """The student's quiz history; open one per process, each call is its own transaction."""

    def __init__(self, path: Path, timeout_s: float = 30.0):
        self.path = Path(path)
        self.timeout_s = timeout_s
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise ProgressError(f"Cannot open the progress database {self.path}: {exc}.") from exc

    @classmethod
    def for_settings(cls, settings) -> "Progress":
        return cls(settings.progress_db)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout={int(self.timeout_s * 1000)}")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextmanager
    def _write(self):
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise ProgressError(f"Could not save progress to {self.path}: {exc}.") from exc
            raise
        finally:
            conn.close()

    def record(self, question_id: str, topic: str, chosen: int, correct: int,
               now: float | None = None, question_json: str = "") -> Card:
        """Store one attempt and move the question's Leitner card (one transaction)."""
        now = time.time() if now is None else now
        ok = chosen == correct
        with self._write() as conn:
            conn.execute(
                "INSERT INTO attempts(question_id, topic, chosen, correct, is_correct, "
                "answered_at) VALUES (?, ?, ?, ?, ?, ?)",
                (question_id, topic, chosen, correct, int(ok), now))
            row = conn.execute("SELECT box, question_json FROM cards WHERE question_id = ?",
                               (question_id,)).fetchone()
            box = next_box(row[0], ok) if row else (2 if ok else 1)
            stored = question_json or (row[1] if row else "")
            due = now + BOX_DAYS[box] * DAY
            conn.execute(
                "INSERT INTO cards(question_id, topic, box, due_at, question_json) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(question_id) DO UPDATE SET "
                "box = excluded.box, due_at = excluded.due_at, topic = excluded.topic, "
                "question_json = excluded.question_json",
                (question_id, topic, box, due, stored))
        return Card(question_id, topic, box, due, stored)

    def card(self, question_id: str) -> Card | None:
        with self._connect() as conn:
            row = conn.execute("SELECT question_id, topic, box, due_at, question_json FROM cards "
                               "WHERE question_id = ?", (question_id,)).fetchone()
        return Card(*row) if row else None

    def due(self, topic: str | None = None, now: float | None = None, limit: int = 50
            ) -> list[Card]:
        """Cards whose review time has come, lowest box (most often missed) first."""
        now = time.time() if now is None else now
        sql = ("SELECT question_id, topic, box, due_at, question_json FROM cards "
               "WHERE due_at <= ?")
        args: list = [now]
        if topic:
            sql += " AND lower(topic) = lower(?)"
            args.append(topic)
        sql += " ORDER BY box, due_at LIMIT ?"
        args.append(limit)
        with self._connect() as conn:
            return [Card(*row) for row in conn.execute(sql, args).fetchall()]

    def scores(self, now: float | None = None) -> list[TopicScore]:
        now = time.time() if now is None else now
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT topic, COUNT(*), SUM(is_correct) FROM attempts GROUP BY topic "
                "ORDER BY topic").fetchall()
            due = dict(conn.execute("SELECT topic, COUNT(*) FROM cards WHERE due_at <= ? "
                                    "GROUP BY topic", (now,)).fetchall())
        return [TopicScore(t, n, int(c or 0), int(due.get(t, 0))) for t, n, c in rows]

    def weak_topics(self, n: int = 5) -> list[str]:
        """Topics with the lowest accuracy (ties: most attempts first), for weighting quizzes."""
        scored = sorted(self.scores(), key=lambda s: (s.accuracy, -s.attempts))
        return [s.topic for s in scored if s.accuracy < 1.0][:n]

    def attempts(self) -> int:
        with self._connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0])

    def to_json(self) -> dict:
        return {"db": str(self.path), "topics": [
            {"topic": s.topic, "attempts": s.attempts, "correct": s.correct,
             "accuracy": round(s.accuracy, 4), "due": s.due} for s in self.scores()]}

