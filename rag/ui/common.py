"""Shared page helpers: friendly errors, passage rendering, citation highlighting."""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from rag.config import Settings
from rag.errors import (
    ChromaAuthError,
    ConfigError,
    GenerationError,
    IndexMissingError,
    IndexUnavailableError,
    InputError,
    NotesError,
    StudyragError,
)
from rag.models import Passage
from rag.text import WORD, strip_markup

log = logging.getLogger(__name__)

HINTS: list[tuple[type, str]] = [
    (IndexMissingError, "Open the **Notes** page and click **Re-index**."),
    (ChromaAuthError,
     "Fix the token setting (STUDYRAG_STORAGE__CHROMA_TOKEN) and reload the page."),
    (IndexUnavailableError, "Check the Chroma server, or re-index on the **Notes** page."),
    (GenerationError, "Pick another backend in the sidebar or turn on **Extractive mode**."),
    (ConfigError, "Fix the setting (config.toml or STUDYRAG_* variable) and reload the page."),
    (NotesError, "Check the folder path on the **Notes** page."),
    (InputError, ""),
]


def hint_for(exc: StudyragError) -> str:
    for cls, hint in HINTS:
        if isinstance(exc, cls):
            return hint
    return ""


def show_error(exc: BaseException) -> None:
    """One ``st.error`` that says what happened and what to do — never a traceback."""
    if isinstance(exc, StudyragError):
        hint = hint_for(exc)
        st.error(f"{exc}" + (f"  \n{hint}" if hint else ""), icon=":material/error:")
    else:
        log.exception("Unexpected error in the app", exc_info=exc)
        short = str(exc).splitlines()[0][:200] if str(exc) else ""
        st.error(
            f"Something went wrong ({type(exc).__name__}{': ' + short if short else ''}).  \n"
            "Try again; if it keeps happening, switch on **Extractive mode** in the sidebar "
            "or re-index on the **Notes** page.",
            icon=":material/error:",
        )


def allowed_folder(settings: Settings, typed: str | Path) -> Path:
    """The folder resolved (symlinks too) if it lies under an allowed root: a browser session,
    perhaps another machine's, must not make the app read the rest of the disk."""
    try:
        folder = Path(typed).expanduser().resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # NUL byte, symlink loop, ...
        raise InputError(f"{str(typed)!r} is not a usable folder path ({exc}).") from None
    roots = settings.storage.folder_roots
    if any(folder.is_relative_to(root) for root in roots):
        return folder
    shown = f"{typed} (= {folder})" if str(folder) != str(typed) else str(folder)
    raise InputError(
        f"{shown} is outside the folders the app may read ({', '.join(map(str, roots))}); "
        "add it to allowed_roots (STUDYRAG_STORAGE__ALLOWED_ROOTS) to allow it."
    )


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Wrap a page body: errors become ``st.error``; Streamlit's rerun/stop pass through."""
    try:
        yield
    except Exception as exc:  # st.rerun / st.stop are BaseException and pass through
        show_error(exc)


def md_escape(text: str) -> str:
    """Keep note text literal in st.markdown (``$`` would start LaTeX, ``~`` strike-through)."""
    return text.replace("\\", "\\\\").replace("$", "\\$").replace("~", "\\~")


def _words(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(text) if len(w) > 2}


def _find_lines(lines: list[str], sentences: list[str]) -> dict[int, list[str]]:
    """Which lines hold a cited sentence: {line index: exact substrings ([] = whole line)}."""
    marks: dict[int, list[str]] = {}
    for sentence in sentences:
        plain = strip_markup(sentence)
        # Extractive sentences of nested bullets carry their parent as a lead-in ("A: b").
        tails = [plain] + ([plain.split(": ", 1)[1]] if ": " in plain else [])
        hit = next(((i, tail) for tail in tails for i, line in enumerate(lines)
                    if len(tail) > 8 and tail in strip_markup(line)), None)
        if hit:
            i, tail = hit
            if marks.get(i) != []:
                marks.setdefault(i, []).append(tail)
            continue
        target = _words(plain)
        scored = [(len(w & target) / len(w | target), i)
                  for i, line in enumerate(lines) if (w := _words(line)) and target]
        if scored:
            best, i = max(scored)
            if best >= 0.2:
                marks[i] = []
    return marks


def _highlight(line: str, parts: list[str]) -> str:
    """HTML of one line with each exact part wrapped in <mark> (whole line if none fit)."""
    shown = strip_markup(line) if parts else line
    spans = []
    for part in parts:
        at = shown.find(part)
        if at >= 0:
            spans.append((at, at + len(part)))
    if not spans:
        return f'<mark class="sr-hl">{html.escape(shown) or "&nbsp;"}</mark>'
    out, pos = [], 0
    for a, b in sorted(spans):
        a = max(a, pos)
        if a >= b:
            continue
        out.append(html.escape(shown[pos:a]))
        out.append(f'<mark class="sr-hl">{html.escape(shown[a:b])}</mark>')
        pos = b
    out.append(html.escape(shown[pos:]))
    return "".join(out)


def passage_html(passage: Passage, cited: list[str] | None = None) -> str:
    """The passage with its line numbers; the cited sentences highlighted."""
    lines = passage.text.split("\n")
    marks = _find_lines(lines, cited or [])
    rows = []
    for i, line in enumerate(lines):
        number = passage.start_line + i
        if i in marks:
            body, cls = _highlight(line, marks[i]), "sr-line sr-cited"
        else:
            body, cls = html.escape(line) or "&nbsp;", "sr-line"
        rows.append(f'<div class="{cls}"><span class="sr-no">{number}</span>'
                    f'<span class="sr-tx">{body}</span></div>')
    return PASSAGE_CSS + '<div class="sr-passage">' + "".join(rows) + "</div>"


PASSAGE_CSS = """<style>
.sr-passage{font-size:0.86rem;line-height:1.45;border-left:3px solid #d0d7de;
  padding:0.2rem 0 0.2rem 0.4rem;max-height:22rem;overflow-y:auto}
.sr-line{display:flex;gap:0.7rem;white-space:pre-wrap;word-break:break-word}
.sr-no{color:#8c959f;min-width:2.6rem;text-align:right;user-select:none;
  font-family:ui-monospace,monospace;font-size:0.78rem;padding-top:0.1rem}
.sr-tx{flex:1}
mark.sr-hl{background:#fff3b0;color:inherit;padding:0 0.1rem;border-radius:2px}
</style>"""


def location_label(passage: Passage) -> str:
    head = f" › {passage.heading}" if passage.heading else ""
    page = f" · {passage.page_label}" if passage.page is not None else ""
    return f"{passage.file}{head}{page} · lines {passage.start_line}–{passage.end_line}"


def show_passage(passage: Passage, cited: list[str] | None = None) -> None:
    st.caption(f":material/description: `{passage.file}`" + (f" › {md_escape(passage.heading)}"
                                         if passage.heading else "")
               + (f" · **{passage.page_label}**" if passage.page is not None else "")
               + f" · lines {passage.start_line}–{passage.end_line}"
               + (" of the converted text" if passage.page is not None else ""))
    st.html(passage_html(passage, cited))
