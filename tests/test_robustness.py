"""Hostile input: nothing crashes, bad files are skipped with a reason, questions never trace.

Property tests (hypothesis) push generated inputs through decoding, loading, chunking and
question cleaning (MAX_EXAMPLES below, > 500 in all); hand-picked hazards cover the file
system (symlink loops, FIFOs, unreadable files, odd names, 50 MB files) and a folder of
nasty notes goes through a real ingest and real questions (real model, real Chroma).
"""

from __future__ import annotations

import os
import random
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.chunking import chunk_note
from rag.errors import InputError
from rag.loading import Skipped, decode_bytes, load_file, load_notes
from rag.models import NoteFile
from rag.retrieval import MAX_QUESTION_CHARS, clean_question

REPO = Path(__file__).resolve().parent.parent
# Examples per property; the four properties below try 700 generated inputs in all.
MAX_EXAMPLES = {"bytes": 200, "markdown": 200, "lines": 150, "questions": 150}
FUZZ = dict(deadline=None, derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                   HealthCheck.function_scoped_fixture])
_TMP = Path(tempfile.mkdtemp(prefix="studyrag-fuzz-"))


def check_chunks(note: NoteFile) -> None:
    """Invariants every chunk must keep: a real line span, non-empty text, file order."""
    chunks = chunk_note(note, chunk_size=300, overlap=50, min_chars=60)
    last_start = 0
    for c in chunks:
        assert c.text.strip()
        assert 1 <= c.start_line <= c.end_line <= len(note.lines), (c.start_line, c.end_line)
        assert c.start_line >= last_start
        last_start = c.start_line
        # Every line of the chunk is (a piece of) the note's own text at that span.
        span = "\n".join(note.lines[c.start_line - 1:c.end_line])
        for line in c.text.split("\n"):
            assert line.strip() in span, line[:80]


def load_bytes(data: bytes, name: str = "note.md") -> NoteFile | Skipped:
    folder = Path(tempfile.mkdtemp(dir=_TMP))
    path = folder / name
    path.write_bytes(data)
    return load_file(path, folder, 20_000_000)


# --- generated input ------------------------------------------------------------------
@settings(max_examples=MAX_EXAMPLES["bytes"], **FUZZ)
@given(st.one_of(
    st.binary(max_size=3000),
    st.binary(max_size=200).map(lambda b: b"\xef\xbb\xbf" + b),
    st.binary(max_size=200).map(lambda b: b"\xff\xfe" + b),
    st.binary(max_size=200).map(lambda b: b"---\n" + b),
))
def test_random_bytes_load_or_skip(data):
    item = load_bytes(data)
    if isinstance(item, Skipped):
        assert item.reason and item.file == "note.md"
    else:
        assert item.lines and any(line.strip() for line in item.lines)
        check_chunks(item)


_WORDS = st.sampled_from(["S3", "bucket", "EC2", "Glacier", "façade", "naïve", "日本語",
                          "–", "€", "<script>", "'; DROP TABLE notes; --", "$(rm -rf ~)",
                          "**bold**", "`code`", "[link](http://x)", "\u200b", "🙂", "x" * 60])
_LINE = st.one_of(
    st.lists(_WORDS, max_size=12).map(" ".join),
    st.tuples(st.integers(1, 7), st.lists(_WORDS, max_size=5)).map(
        lambda t: "#" * t[0] + " " + " ".join(t[1])),
    st.tuples(st.integers(0, 40), st.lists(_WORDS, min_size=1, max_size=6)).map(
        lambda t: "  " * t[0] + "- " + " ".join(t[1])),
    st.tuples(st.integers(0, 40), st.sampled_from("•○§□▪◦‣■●"), st.lists(_WORDS, max_size=4)
              ).map(lambda t: "\t" * t[0] + t[1] + " " + " ".join(t[2])),
    st.sampled_from(["", "---", "+++", "```", "~~~", "***", "> quote", "title: T",
                     "\x00", "\r", "\x1b[31m", "\t"]),
    st.text(max_size=80),
    st.integers(300, 3000).map(lambda n: ("word " * n).strip()),
)


@settings(max_examples=MAX_EXAMPLES["markdown"], **FUZZ)
@given(st.lists(_LINE, max_size=60),
       st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"]),
       st.sampled_from(["\n", "\r\n", "\r"]))
def test_markdown_like_notes_in_any_encoding(lines, encoding, newline):
    data = newline.join(lines).encode(encoding, errors="replace")
    item = load_bytes(data, random.choice(["a.md", "with space.md", "ünï cödé.txt"]))
    if isinstance(item, Skipped):
        assert item.reason
        return
    check_chunks(item)
    if encoding in ("utf-8", "utf-8-sig", "utf-16") and "\x00" not in "".join(lines):
        # Line numbers survive decoding: the note has as many lines as the source.
        assert len(item.lines) >= 1


@settings(max_examples=MAX_EXAMPLES["lines"], **FUZZ)
@given(st.lists(st.one_of(st.text(max_size=120), _LINE), max_size=80))
def test_chunking_arbitrary_lines(lines):
    check_chunks(NoteFile(path="x", rel="x.md", lines=tuple(lines)))


@settings(max_examples=MAX_EXAMPLES["questions"], **FUZZ)
@given(st.one_of(st.text(max_size=300), st.text(alphabet="?!.,;:-*#()[]{}'\"` \t\n",
                                                max_size=200),
                 st.integers(1, 25_000).map(lambda n: ("why " * n)[:n])))
def test_clean_question_never_crashes(question):
    try:
        cleaned = clean_question(question)
    except InputError as exc:
        assert "empty" in str(exc)
        return
    assert cleaned.strip() and len(cleaned) <= MAX_QUESTION_CHARS


# --- hand-picked hazards --------------------------------------------------------------
GOOD = "# S3 storage classes\n- S3 Standard-IA is for infrequently accessed data.\n" \
       "- S3 Glacier Deep Archive is the cheapest class, with retrieval in hours.\n"


def build_nasty_folder(root: Path, big: bool = True) -> dict[str, str | None]:
    """Write the hazards; returns name -> expected skip-reason fragment (None = loads)."""
    root.mkdir(parents=True, exist_ok=True)
    expect: dict[str, str | None] = {}

    def put(name: str, data: bytes, reason: str | None) -> None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        expect[name] = reason

    put("good.md", GOOD.encode(), None)
    put("empty.md", b"", "empty")
    put("blank.md", b" \n\t\n\r\n", "empty")
    put("front-matter-only.md", b"---\ntitle: Nothing here\ntags: [a]\n---\n", "no content")
    put("nul-bytes.md", b"# S3\x00\x00\x00 binary\x00junk" * 20, "binary")
    put("random-bytes.txt", random.Random(3).randbytes(5000), "binary")
    put("latin-1.md", "# Café notes\n- Amazon façade: naïve résumé of EBS.\n".encode("latin-1"),
        None)
    put("utf-16-bom.md", ("# Übersicht\n- Kinesis streams shard data.\n").encode("utf-16"),
        None)
    put("utf-16-be-bom.md", b"\xfe\xff" + "# SQS\n- SQS queues decouple.\n".encode("utf-16-be"),
        None)
    put("utf-8-bom.md", b"\xef\xbb\xbf# IAM\n- IAM roles grant temporary credentials.\n", None)
    put("name with spaces.md", b"# VPC\n- A VPC spans all AZs of one region.\n", None)
    put("ünïcödé ノート.md", "# Route 53\n- Route 53 is DNS.\n".encode(), None)
    put("sub dir/deeper/évier.txt", b"Lambda functions time out after 15 minutes at most.\n",
        None)
    put("deep-nesting.md", ("# Deep\n" + "".join("\t" * i + "• level %d\n" % i
                                                 for i in range(1, 60))
                            + "\t" * 10_000 + "• level 10000 deep\n"
                            + "".join("  " * i + "- step %d\n" % i for i in range(60))
                            + "  " * 10_000 + "- step 10000 deep\n").encode(), None)
    put("blank-lines.md", b"\n" * 200_000 + b"# End\n- EFS is a shared file system.\n", None)
    put("one-long-line.md", ("Kinesis " * 2000).encode(), None)
    put("html-sql-shell.md", b"# Injection-looking text\n- <script>alert(1)</script> and "
        b"'; DROP TABLE chunks; -- and $(rm -rf /) and `shutdown -h now` are just text.\n",
        None)
    put(".hidden.md", b"# hidden\n- never indexed\n", "HIDDEN")
    put("image.png", b"\x89PNG\r\n", "HIDDEN")
    if big:  # a sparse 50 MB file: skipped by size before it is read
        with open(root / "huge.md", "wb") as fh:
            fh.truncate(50_000_000)
        expect["huge.md"] = "too large"
    os.symlink("loop-b.md", root / "loop-a.md")
    os.symlink("loop-a.md", root / "loop-b.md")
    expect["loop-a.md"] = expect["loop-b.md"] = "unreadable"
    os.symlink("does-not-exist.md", root / "dangling.md")
    expect["dangling.md"] = "unreadable"
    os.symlink(".", root / "dir-loop")  # a directory symlink loop is not followed
    os.mkfifo(root / "fifo.md")
    expect["fifo.md"] = "not a regular file"
    (root / "folder.md").mkdir()  # a folder named like a note
    return expect


def test_nasty_folder_loads_with_named_skips(tmp_path):
    expect = build_nasty_folder(tmp_path / "notes")
    report = load_notes(tmp_path / "notes")
    loaded = {f.rel for f in report.files}
    skipped = {s.file: s.reason for s in report.skipped}
    for name, reason in expect.items():
        if reason == "HIDDEN":
            assert name not in loaded and name not in skipped
        elif reason is None:
            assert name in loaded, (name, skipped.get(name))
        else:
            assert name in skipped and reason in skipped[name], (name, skipped.get(name))
    latin = next(f for f in report.files if f.rel == "latin-1.md")
    assert "façade" in latin.text
    assert "Übersicht" in next(f for f in report.files if f.rel == "utf-16-bom.md").text
    for note in report.files:
        check_chunks(note)


def test_unreadable_file_is_skipped(tmp_path, monkeypatch):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "good.md").write_text(GOOD)
    secret = notes / "secret.md"
    secret.write_text(GOOD)
    secret.chmod(0)
    if os.geteuid() == 0:  # root reads anything: simulate the permission error instead
        real = Path.read_bytes

        def deny(self):
            if self.name == "secret.md":
                raise PermissionError(13, "Permission denied")
            return real(self)

        monkeypatch.setattr(Path, "read_bytes", deny)
    report = load_notes(notes)
    assert [f.rel for f in report.files] == ["good.md"]
    assert report.skipped and "Permission denied" in report.skipped[0].reason
    secret.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_decode_bytes_reasons():
    assert decode_bytes(b"\xff\xfe\x00") == (None, "invalid UTF-16")  # odd length: skipped
    assert decode_bytes(b"caf\xe9")[0] == "café"
    assert decode_bytes(b"\x00\x01\x02" * 100)[0] is None


# --- real ingest and questions over the nasty folder (real model, real Chroma) ----------
@pytest.fixture(scope="module")
def nasty_tutor(tmp_path_factory):
    from rag.chains import Tutor
    from rag.config import Settings
    from rag.index import NoteIndex

    root = tmp_path_factory.mktemp("nasty")
    expect = build_nasty_folder(root / "notes")
    settings = Settings(home=root / "home",
                        storage={"notes_dir": root / "notes"},
                        answer={"backend": "extractive"})
    index = NoteIndex(settings)
    report = index.ingest()
    return Tutor(settings), index, report, expect


def test_ingest_nasty_folder(nasty_tutor):
    tutor, index, report, expect = nasty_tutor
    skipped = {s.file for s in report.skipped}
    assert skipped == {n for n, r in expect.items() if r not in (None, "HIDDEN")}
    assert report.files == sum(r is None for r in expect.values())
    # Nothing half-written: Chroma and the BM25 side index agree chunk for chunk.
    assert index.count() == report.chunks == len(index.chunks())
    again = index.ingest()
    assert again.unchanged_files == report.files and again.added_files == 0


QUESTIONS = [
    "Which S3 class is the cheapest?",
    "What is the deepest level?",
    "x" * 20_000,
    "S3 " * 7000,
    "'; DROP TABLE chunks; --",
    "<script>alert('x')</script> what is a VPC?",
    "$(rm -rf /) && echo pwned; what is Route 53?",
    "../../../../etc/passwd",
    "Ünïcödé? ノート 🙂 \u200b what is Kinesis",
    "SELECT * FROM notes WHERE 1=1",
    "%s %n {0} {{}} \\x00",
]


@pytest.mark.parametrize("question", QUESTIONS, ids=range(len(QUESTIONS)))
def test_hostile_questions_get_an_answer_or_abstain(nasty_tutor, question):
    tutor = nasty_tutor[0]
    answer = tutor.ask(question)
    assert answer.answer
    assert answer.abstained or answer.citations


@pytest.mark.parametrize("question", ["", "   ", "\n\t", "???!!!...", "-- ;", "🙂🙂", None])
def test_empty_questions_are_input_errors(nasty_tutor, question):
    with pytest.raises(InputError):
        nasty_tutor[0].ask(question)


@pytest.mark.slow  # ~40 real retrievals + extractive answers
@settings(max_examples=40, **FUZZ)
@given(st.text(max_size=400))
def test_generated_questions_never_crash(nasty_tutor, question):
    try:
        answer = nasty_tutor[0].ask(question)
    except InputError:
        return
    assert answer.abstained or answer.citations


# --- the CLI: one "error:" line, exit 2, never a traceback ------------------------------
def study(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], cwd=REPO,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("question", ["   ", "?!?!"])
def test_cli_empty_question(question):
    proc = study("ask", question)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "empty" in lines[0]
    assert "Traceback" not in proc.stderr


def test_cli_ask_without_index(tmp_path):
    proc = study("ask", "What is S3?", env={"STUDYRAG_HOME": str(tmp_path / "fresh")})
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "study ingest" in lines[0]


def test_cli_ingest_nasty_folder_warns_and_succeeds(nasty_tutor):
    """The same folder through `study ingest`: exit 0, one warning line per skipped file."""
    settings = nasty_tutor[0].settings
    proc = study("ingest", str(settings.storage.notes_dir),
                 env={"STUDYRAG_HOME": str(settings.home)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == len(nasty_tutor[2].skipped)
    assert "unchanged" in proc.stdout
