"""Load a folder of notes into clean line lists, skipping bad files with a named warning.

Normalisation never adds or removes lines, so every line number we cite is the line number
in the user's original file. Documents (PDF, DOCX, PPTX, HTML) are converted first
(rag/convert.py); their line numbers are those of the converted text the app shows.
Obsidian vaults: wikilinks become their readable text, front-matter tags are kept, image
embeds are dropped, and dot-folders (.obsidian, .trash) are never read.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rag.convert import DOC_SUFFIXES, ConversionError, convert
from rag.errors import NotesError
from rag.models import NoteFile

NOTE_SUFFIXES = {".md", ".markdown", ".txt"} | DOC_SUFFIXES
# OneNote exports use these glyphs for nested bullets (level is given by leading tabs).
ONENOTE_BULLETS = "•○§□▪◦‣■●®◊}"
_ONENOTE_LINE = re.compile(rf"^(\t*)([{ONENOTE_BULLETS}])(?:[ \t]+(.*))?$")
# OneNote's numbered sub-items ("a.", "iv.") under tabs become numbered list items.
_ONENOTE_NUMBERED = re.compile(r"^(\t+)([a-z]{1,4}|\d{1,3})\.[ \t]+(.*)$")
_TITLE_YAML = re.compile(r"""^title\s*:\s*["']?(.*?)["']?\s*$""")
_TITLE_TOML = re.compile(r"""^title\s*=\s*["'](.*?)["']\s*$""")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Obsidian: [[Page]], [[Page|alias]], [[Page#Heading]], and embeds ![[...]].
_WIKILINK = re.compile(r"(!?)\[\[([^\[\]|]*)(?:\|([^\[\]]*))?\]\]")
_IMAGE = re.compile(r"\.(png|jpe?g|gif|svg|webp|bmp|avif|tiff?)$", re.IGNORECASE)
_TAGS_INLINE = re.compile(r"^tags?\s*:\s*(.*)$")
_TAG_ITEM = re.compile(r"^\s*-\s+(.*)$")


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


def front_matter_tags(lines: list[str]) -> tuple[str, ...]:
    """Tags from YAML front matter: ``tags: [a, b]``, ``tags: a, b`` or a ``- a`` list."""
    if not lines or lines[0].strip() != "---":
        return ()
    tags: list[str] = []
    in_list = False
    for line in lines[1:200]:
        if line.strip() == "---":
            break
        match = _TAGS_INLINE.match(line.strip())
        if match:
            tags += re.split(r"[,\s]+", match.group(1).strip("[] "))
            in_list = not match.group(1).strip()
        elif in_list and (item := _TAG_ITEM.match(line)):
            tags.append(item.group(1))
        else:
            in_list = False
    clean = (t.strip().strip("\"'").lstrip("#") for t in tags)
    return tuple(dict.fromkeys(t for t in clean if t))


def _wikilink(match: re.Match) -> str:
    """The text a reader sees: the alias, else the page (and heading) name; image embeds go."""
    embed, target, alias = match.group(1), match.group(2).strip(), match.group(3)
    if embed and _IMAGE.search(target):
        return ""
    if alias and alias.strip():
        return alias.strip()
    page, _, heading = target.partition("#")
    heading = heading.lstrip("^")
    return f"{page}: {heading}" if page and heading else (page or heading)


def normalise_line(line: str) -> str:
    """Turn a OneNote bullet (tabs + glyph) into a Markdown list item, an Obsidian wikilink
    into its readable text; strip control chars."""
    line = _CONTROL.sub("", line.replace("\r", "")).rstrip()
    if "[[" in line:
        line = _WIKILINK.sub(_wikilink, line).rstrip()
    match = _ONENOTE_LINE.match(line) or _ONENOTE_NUMBERED.match(line)
    if match:
        depth = max(len(match.group(1)) - 1, 0)
        body = (match.group(3) or "").strip()
        return f"{'  ' * depth}- {body}" if body else ""
    return line


def load_file(path: Path, root: Path, max_bytes: int, cache_dir: Path | None = None
              ) -> NoteFile | Skipped:
    """Load one note, or say why it was skipped. ``cache_dir`` keeps converted documents,
    keyed by the file's hash, so an unchanged PDF is not converted again."""
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
    sha = hashlib.sha256(data).hexdigest()
    if path.suffix.lower() in DOC_SUFFIXES:
        try:
            doc = convert(path, data, sha, cache_dir)
        except ConversionError as exc:
            return Skipped(rel, str(exc))
        return NoteFile(path=str(path), rel=rel,
                        lines=tuple(normalise_line(line) for line in doc.lines),
                        title=path.stem, sha256=sha,
                        pages=tuple(doc.pages) if doc.pages else None)
    text, note = decode_bytes(data)
    if text is None:
        return Skipped(rel, note)
    raw_lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines, title = split_front_matter(raw_lines)
    tags = front_matter_tags(raw_lines) if lines is not raw_lines else ()  # closed front matter
    lines = [normalise_line(line) for line in lines]
    if not any(line.strip() for line in lines):
        return Skipped(rel, "no content (only front matter or whitespace)")
    return NoteFile(
        path=str(path),
        rel=rel,
        lines=tuple(lines),
        title=title or path.stem,
        sha256=sha,
        tags=tags,
    )


def iter_note_paths(root: Path) -> Iterator[Path]:
    """Note files under root, recursively, sorted, without following directory symlinks.
    Dot-folders are skipped: .obsidian (settings), .trash (deleted notes), .git, ..."""
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
        raise NotesError(f"{root} is not a folder; point studyrag at a folder of notes "
                         "(.md, .txt, .pdf, .docx, .pptx, .html).")
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
