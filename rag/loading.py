"""Load a folder of notes into clean line lists, skipping bad files with a named warning.

Normalisation never adds or removes lines, so every line number we cite is the line number
in the user's original file.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import NotesError
from rag.models import NoteFile

NOTE_SUFFIXES = {".md", ".markdown", ".txt"}
# OneNote exports use these glyphs for nested bullets (level is given by leading tabs).
ONENOTE_BULLETS = "•○§□▪◦‣■●®◊}"
_ONENOTE_LINE = re.compile(rf"^(\t*)([{ONENOTE_BULLETS}])(?:[ \t]+(.*))?$")
# OneNote's numbered sub-items ("a.", "iv.") under tabs become numbered list items.
_ONENOTE_NUMBERED = re.compile(r"^(\t+)([a-z]{1,4}|\d{1,3})\.[ \t]+(.*)$")
_TITLE_YAML = re.compile(r"""^title\s*:\s*["']?(.*?)["']?\s*$""")
_TITLE_TOML = re.compile(r"""^title\s*=\s*["'](.*?)["']\s*$""")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass
class Skipped:
    file: str
    reason: str

    def __str__(self) -> str:
        return f"skipped {self.file}: {self.reason}"


@dataclass
class LoadReport:
    files: list[NoteFile] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def decode_bytes(data: bytes) -> tuple[str | None, str]:
    """Decode note bytes; returns (text, note) or (None, reason) when it looks binary."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), ""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "decoded as UTF-16"
        except UnicodeDecodeError:
            return None, "invalid UTF-16"
    head = data[:8192]
    if b"\x00" in head:
        return None, "binary file (NUL bytes)"
    try:
        text = data.decode("utf-8")
        note = ""
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
        note = "not UTF-8, decoded as Windows-1252/Latin-1"
    sample = text[:8192]
    if sample and len(_CONTROL.findall(sample)) / len(sample) > 0.05:
        return None, "binary file (control characters)"
    return text, note


def split_front_matter(lines: list[str]) -> tuple[list[str], str]:
    """Blank out YAML (---) or TOML (+++) front matter, keeping line numbers; return title."""
    if not lines or lines[0].strip() not in ("---", "+++"):
        return lines, ""
    fence = lines[0].strip()
    pattern = _TITLE_YAML if fence == "---" else _TITLE_TOML
    for end in range(1, min(len(lines), 200)):
        if lines[end].strip() == fence:
            title = ""
            for line in lines[1:end]:
                match = pattern.match(line.strip())
                if match:
                    title = match.group(1).strip()
                    break
            return [""] * (end + 1) + lines[end + 1 :], title
    return lines, ""


def normalise_line(line: str) -> str:
    """Turn a OneNote bullet (tabs + glyph) into a Markdown list item; strip control chars."""
    line = _CONTROL.sub("", line.replace("\r", "")).rstrip()
    match = _ONENOTE_LINE.match(line) or _ONENOTE_NUMBERED.match(line)
    if match:
        depth = max(len(match.group(1)) - 1, 0)
        body = (match.group(3) or "").strip()
        return f"{'  ' * depth}- {body}" if body else ""
    return line


def load_file(path: Path, root: Path, max_bytes: int) -> NoteFile | Skipped:
    """Load one note, or say why it was skipped."""
    rel = path.relative_to(root).as_posix()
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block read_bytes()
            return Skipped(rel, "not a regular file")
        size = info.st_size
        if size > max_bytes:
            return Skipped(rel, f"too large ({size / 1e6:.1f} MB > {max_bytes / 1e6:.1f} MB)")
        data = path.read_bytes()
    except OSError as exc:
        return Skipped(rel, f"unreadable ({exc.strerror or exc})")
    if not data.strip():
        return Skipped(rel, "empty file")
    text, note = decode_bytes(data)
    if text is None:
        return Skipped(rel, note)
    raw_lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines, title = split_front_matter(raw_lines)
    lines = [normalise_line(line) for line in lines]
    if not any(line.strip() for line in lines):
        return Skipped(rel, "no content (only front matter or whitespace)")
    return NoteFile(
        path=str(path),
        rel=rel,
        lines=tuple(lines),
        title=title or path.stem,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def iter_note_paths(root: Path) -> Iterator[Path]:
    """Note files under root, recursively, sorted, without following directory symlinks."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=None):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.suffix.lower() in NOTE_SUFFIXES and not name.startswith("."):
                yield path


def check_notes_dir(root: Path) -> Path:
    root = Path(root).expanduser()
    if not root.exists():
        raise NotesError(f"Notes folder {root} does not exist.")
    if not root.is_dir():
        raise NotesError(f"{root} is not a folder; point studyrag at a folder of .md/.txt notes.")
    return root.resolve()


def iter_notes(root: Path, max_file_mb: float = 20.0) -> Iterator[NoteFile | Skipped]:
    """Stream notes one file at a time so huge folders never sit in memory at once."""
    root = check_notes_dir(root)
    max_bytes = int(max_file_mb * 1_000_000)
    for path in iter_note_paths(root):
        yield load_file(path, root, max_bytes)


def load_notes(root: Path, max_file_mb: float = 20.0) -> LoadReport:
    report = LoadReport()
    for item in iter_notes(root, max_file_mb):
        (report.skipped if isinstance(item, Skipped) else report.files).append(item)
    return report
