"""Quiz progress in SQLite: attempts, per-topic scores and an FSRS review schedule.

Each practice question is one FSRS card (the ``fsrs`` library, the scheduler Anki uses): a
wrong answer is rated Again, a right one Good unless the student says Hard or Easy. One file in
the user's data folder (``settings.progress_db``). WAL mode, a busy timeout and short
``BEGIN IMMEDIATE`` transactions make it safe for two processes (the CLI and the app) writing
at once; every write is a single transaction, so a crash never leaves half an attempt.
Databases written with the earlier Leitner boxes are migrated on open, in one transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fsrs import Card as FsrsCard
from fsrs import Rating, Scheduler, State

from rag.errors import InputError, StudyragError

SCHEMA_VERSION = 2  # 1 (unnumbered): Leitner boxes; 2: FSRS cards
# One 10-minute (re)learning step: a missed question comes back in the same sitting, a question
# answered right the first time goes straight to an interval in days (FSRS' default two steps
# would re-ask every right answer ten minutes later, which a multiple-choice quiz does not need).
STEPS = (dt.timedelta(minutes=10),)
SCHEDULER = Scheduler(learning_steps=STEPS, relearning_steps=STEPS)
RATINGS = {"again": Rating.Again, "hard": Rating.Hard, "good": Rating.Good, "easy": Rating.Easy}

TABLES = [
    """CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    question_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    chosen INTEGER NOT NULL,
    correct INTEGER NOT NULL,
    is_correct INTEGER NOT NULL,
    answered_at REAL NOT NULL,
    rating INTEGER,
    card_before TEXT
)""",
    "CREATE INDEX IF NOT EXISTS attempts_topic ON attempts(topic)",
    "CREATE INDEX IF NOT EXISTS attempts_question ON attempts(question_id)",
    """CREATE TABLE IF NOT EXISTS cards (
    question_id TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    due_at REAL NOT NULL,
    state INTEGER NOT NULL,
    step INTEGER,
    stability REAL,
    difficulty REAL,
    last_review REAL,
    last_rating INTEGER NOT NULL,
    question_json TEXT NOT NULL DEFAULT ''
)""",
    "CREATE INDEX IF NOT EXISTS cards_due ON cards(due_at)",
]
CARD_COLUMNS = ("question_id, topic, due_at, state, step, stability, difficulty, last_review, "
                "last_rating, question_json")


class ProgressError(StudyragError):
    """The progress database cannot be opened or written."""


@dataclass(frozen=True)
class TopicScore:
    topic: str
    attempts: int
    correct: int
    due: int  # cards due today

    @property
    def accuracy(self) -> float:
        return self.correct / self.attempts if self.attempts else 0.0


@dataclass(frozen=True)
class Card:
    """One question's FSRS memory state (``state`` is an ``fsrs.State`` value)."""

    question_id: str
    topic: str
    due_at: float
    state: int
    step: int | None
    stability: float | None
    difficulty: float | None
    last_review: float | None
    last_rating: int
    question_json: str

    @property
    def missed(self) -> bool:
        """The last answer was wrong (rated Again)."""
        return self.last_rating == Rating.Again

    def fsrs(self) -> FsrsCard:
        return FsrsCard(card_id=_card_id(self.question_id), state=State(self.state),
                        step=self.step, stability=self.stability, difficulty=self.difficulty,
                        due=_utc(self.due_at),
                        last_review=None if self.last_review is None else _utc(self.last_review))


def parse_rating(text: str | Rating) -> Rating:
    """``again|hard|good|easy`` (or their first letter) as an FSRS rating."""
    if isinstance(text, Rating):
        return text
    word = (text or "").strip().lower()
    for name, rating in RATINGS.items():
        if word in (name, name[0]):
            return rating
    raise InputError(f"Unknown rating {text!r}: use again, hard, good or easy.")


def rating_for(is_correct: bool, rating: str | Rating | None = None) -> Rating:
    """Wrong → Again; right → Good, or the student's own Hard/Easy (or Again: "I guessed")."""
    chosen = parse_rating(rating) if rating is not None else None
    if not is_correct:
        if chosen not in (None, Rating.Again):
            raise InputError("A wrong answer is always rated 'again'.")
        return Rating.Again
    return chosen or Rating.Good


def end_of_day(now: float) -> float:
    """Local midnight after ``now``: "due today" means due before it."""
    tomorrow = dt.datetime.fromtimestamp(now).date() + dt.timedelta(days=1)
    return dt.datetime.combine(tomorrow, dt.time.min).timestamp()


def when(due_at: float, now: float | None = None) -> str:
    """A due time as a student reads it: 'now', 'in 10 minutes', 'in 3 days (Tue 2 Dec)'."""
    now = time.time() if now is None else now
    seconds = due_at - now
    if seconds <= 60:
        return "now"
    if seconds < 3600:
        return f"in {round(seconds / 60)} minutes"
    if seconds < 86400:
        hours = round(seconds / 3600)
        return f"in {hours} hour{'s' * (hours != 1)}"
    days = round(seconds / 86400)
    day = dt.datetime.fromtimestamp(due_at)
    return f"in {days} day{'s' * (days != 1)} ({day:%a} {day.day} {day:%b})"


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc)


def _card_id(question_id: str) -> int:
    # fsrs.Card() without an id sleeps 1 ms to make one from the clock; ours is the question's.
    return int(hashlib.sha256(question_id.encode()).hexdigest()[:12], 16)


def _columns(card: FsrsCard, rating: Rating) -> tuple:
    return (card.due.timestamp(), int(card.state), card.step, card.stability, card.difficulty,
            card.last_review.timestamp() if card.last_review else None, int(rating))


def _migrate(conn: sqlite3.Connection, scheduler: Scheduler) -> None:
    """Bring any earlier schema to ``SCHEMA_VERSION`` (caller holds the write transaction).

    Leitner cards become FSRS cards whose memory state is their attempts replayed through the
    scheduler (wrong → Again, right → Good, at the times they were answered) and whose due time
    is the one the Leitner schedule had promised; attempts, topics and questions are kept."""
    for sql in TABLES[:3]:
        conn.execute(sql)
    attempt_cols = {r[1] for r in conn.execute("PRAGMA table_info(attempts)")}
    for name, kind in (("rating", "INTEGER"), ("card_before", "TEXT")):
        if name not in attempt_cols:
            conn.execute(f"ALTER TABLE attempts ADD COLUMN {name} {kind}")
    conn.execute("UPDATE attempts SET rating = CASE is_correct WHEN 1 THEN ? ELSE ? END "
                 "WHERE rating IS NULL", (int(Rating.Good), int(Rating.Again)))
    card_cols = {r[1] for r in conn.execute("PRAGMA table_info(cards)")}
    old = []
    if "box" in card_cols:
        old = conn.execute("SELECT question_id, topic, due_at, question_json FROM cards"
                           ).fetchall()
        conn.execute("DROP INDEX IF EXISTS cards_due")
        conn.execute("DROP TABLE cards")
    for sql in TABLES[3:]:
        conn.execute(sql)
    for question_id, topic, due_at, question_json in old:
        card = FsrsCard(card_id=_card_id(question_id), due=_utc(due_at))
        rating = Rating.Again
        for is_correct, answered_at in conn.execute(
                "SELECT is_correct, answered_at FROM attempts WHERE question_id = ? "
                "ORDER BY answered_at, id", (question_id,)):
            rating = Rating.Good if is_correct else Rating.Again
            card, _ = scheduler.review_card(card, rating, _utc(answered_at))
        _, *state = _columns(card, rating)  # the due time stays exactly the stored one
        conn.execute(f"INSERT INTO cards({CARD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (question_id, topic, due_at, *state, question_json))
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


class Progress:
    """The student's quiz history; open one per process, each call is its own transaction."""

    def __init__(self, path: Path, timeout_s: float = 30.0, scheduler: Scheduler | None = None):
        self.path = Path(path)
        self.timeout_s = timeout_s
        self.scheduler = scheduler or SCHEDULER
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._connect()
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                version = conn.execute("PRAGMA user_version").fetchone()[0]
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise ProgressError(f"Cannot open the progress database {self.path}: {exc}.") from exc
        if version < SCHEMA_VERSION:
            with self._write() as conn:  # re-checked inside: another process may have won
                if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                    _migrate(conn, self.scheduler)

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

    def _read(self, sql: str, args=()) -> list[tuple]:
        try:
            conn = self._connect()
            try:
                return conn.execute(sql, args).fetchall()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise ProgressError(f"Cannot read the progress database {self.path}: {exc}.") \
                from exc

    def _save(self, conn, question_id: str, topic: str, card: FsrsCard, rating: Rating,
              question_json: str) -> Card:
        values = (question_id, topic, *_columns(card, rating), question_json)
        conn.execute(
            f"INSERT INTO cards({CARD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(question_id) DO UPDATE SET topic = excluded.topic, "
            "due_at = excluded.due_at, state = excluded.state, step = excluded.step, "
            "stability = excluded.stability, difficulty = excluded.difficulty, "
            "last_review = excluded.last_review, last_rating = excluded.last_rating, "
            "question_json = excluded.question_json", values)
        return Card(*values)

    def record(self, question_id: str, topic: str, chosen: int, correct: int,
               now: float | None = None, question_json: str = "",
               rating: str | Rating | None = None) -> Card:
        """Store one attempt and review the question's FSRS card (one transaction).

        ``rating`` is the student's own Hard/Easy (or Again) for a right answer."""
        now = time.time() if now is None else now
        ok = chosen == correct
        grade = rating_for(ok, rating)
        with self._write() as conn:
            row = conn.execute(f"SELECT {CARD_COLUMNS} FROM cards WHERE question_id = ?",
                               (question_id,)).fetchone()
            before = Card(*row).fsrs() if row else FsrsCard(card_id=_card_id(question_id),
                                                             due=_utc(now))
            after, _ = self.scheduler.review_card(before, grade, _utc(now))
            conn.execute(
                "INSERT INTO attempts(question_id, topic, chosen, correct, is_correct, "
                "answered_at, rating, card_before) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (question_id, topic, chosen, correct, int(ok), now, int(grade),
                 before.to_json()))
            return self._save(conn, question_id, topic, after, grade,
                              question_json or (row[-1] if row else ""))

    def rate(self, question_id: str, rating: str | Rating) -> Card:
        """Change the rating of the question's latest answer (the app records a right answer
        as Good at once, then lets the student say it was Hard or Easy)."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT id, topic, is_correct, answered_at, card_before FROM attempts "
                "WHERE question_id = ? ORDER BY id DESC LIMIT 1", (question_id,)).fetchone()
            if row is None:
                raise InputError("That question has no answer to rate yet.")
            attempt_id, topic, ok, answered_at, before = row
            if before is None:
                raise InputError("That answer was saved before FSRS scheduling; it keeps its "
                                 "rating.")
            grade = rating_for(bool(ok), rating)
            after, _ = self.scheduler.review_card(FsrsCard.from_json(before), grade,
                                                  _utc(answered_at))
            conn.execute("UPDATE attempts SET rating = ? WHERE id = ?", (int(grade), attempt_id))
            stored = conn.execute("SELECT topic, question_json FROM cards WHERE question_id = ?",
                                  (question_id,)).fetchone()
            return self._save(conn, question_id, stored[0] if stored else topic, after, grade,
                              stored[1] if stored else "")

    def card(self, question_id: str) -> Card | None:
        rows = self._read(f"SELECT {CARD_COLUMNS} FROM cards WHERE question_id = ?",
                          (question_id,))
        return Card(*rows[0]) if rows else None

    def cards(self, topic: str | None = None) -> list[Card]:
        """Every card (the questions the student has answered), for export."""
        sql, args = f"SELECT {CARD_COLUMNS} FROM cards", []
        if topic:
            sql += " WHERE lower(topic) = lower(?)"
            args.append(topic)
        return [Card(*row) for row in self._read(sql + " ORDER BY topic, question_id", args)]

    def due(self, topic: str | None = None, now: float | None = None, limit: int = 50
            ) -> list[Card]:
        """Cards due today, the ones most likely forgotten (lowest FSRS retrievability, then
        hardest) first."""
        now = time.time() if now is None else now
        sql = f"SELECT {CARD_COLUMNS} FROM cards WHERE due_at < ?"
        args: list = [end_of_day(now)]
        if topic:
            sql += " AND lower(topic) = lower(?)"
            args.append(topic)
        cards = [Card(*row) for row in self._read(sql, args)]
        at = _utc(now)
        cards.sort(key=lambda c: (self.scheduler.get_card_retrievability(c.fsrs(), at),
                                  -(c.difficulty or 0.0), c.due_at))
        return cards[:limit]

    def next_due(self, now: float | None = None) -> float | None:
        """When the next card after today comes due (None: no cards)."""
        now = time.time() if now is None else now
        rows = self._read("SELECT MIN(due_at) FROM cards WHERE due_at >= ?", (end_of_day(now),))
        return rows[0][0] if rows else None

    def scores(self, now: float | None = None) -> list[TopicScore]:
        now = time.time() if now is None else now
        rows = self._read("SELECT topic, COUNT(*), SUM(is_correct) FROM attempts GROUP BY topic "
                          "ORDER BY topic")
        due = dict(self._read("SELECT topic, COUNT(*) FROM cards WHERE due_at < ? "
                              "GROUP BY topic", (end_of_day(now),)))
        return [TopicScore(t, n, int(c or 0), int(due.get(t, 0))) for t, n, c in rows]

    def weak_topics(self, n: int = 5) -> list[str]:
        """Topics with the lowest accuracy (ties: most attempts first), for weighting quizzes."""
        scored = sorted(self.scores(), key=lambda s: (s.accuracy, -s.attempts))
        return [s.topic for s in scored if s.accuracy < 1.0][:n]

    def attempts(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM attempts")[0][0])

    def to_json(self, now: float | None = None) -> dict:
        scores = self.scores(now)
        return {"db": str(self.path), "due_today": sum(s.due for s in scores), "topics": [
            {"topic": s.topic, "attempts": s.attempts, "correct": s.correct,
             "accuracy": round(s.accuracy, 4), "due": s.due} for s in scores]}
