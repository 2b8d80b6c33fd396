"""Documents (PDF, DOCX, PPTX, HTML) to Markdown lines, each line with its page or slide.

DOCX, PPTX and HTML go through markitdown. PDFs go through pdfminer.six, the engine
markitdown itself uses for PDF text, but page by page: markitdown's PDF result has no page
boundaries, and citations must name the page. Headings of a PDF come back from font sizes
(a short line set larger than the body text). Choice and figures: README, "Notes formats".
A result is cached by the file's SHA-256, so re-indexing an unchanged document is free.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

DOC_SUFFIXES = {".pdf", ".docx", ".pptx", ".html", ".htm"}
CACHE_VERSION = "1"  # bump when a conversion changes
_SLIDE = re.compile(r"^<!-- Slide number: (\d+) -->$")
_PERMALINK = re.compile(r"\[¶\]\([^)]*\)")  # Sphinx-style heading anchors in saved pages
_LOCK = threading.Lock()
_CONVERTERS = None


class ConversionError(Exception):
    """Why a document cannot be indexed, in words the student can act on."""


@dataclass
class Converted:
    lines: list[str]
    pages: list[int] | None  # page (PDF) or slide (PPTX) of each line; None: no pages


def convert(path: Path, data: bytes, sha256: str, cache_dir: Path | None = None) -> Converted:
    """The document's Markdown lines (from the cache when this exact file was seen before)."""
    cached = cache_dir / f"{sha256}-{CACHE_VERSION}.json" if cache_dir else None
    if cached is not None:
        try:
            got = json.loads(cached.read_text(encoding="utf-8"))
            return Converted(got["lines"], got["pages"])
        except (OSError, ValueError, KeyError):
            pass
    suffix = path.suffix.lower()
    result = _pdf(data) if suffix == ".pdf" else _markitdown(data, suffix)
    if not any(line.strip() for line in result.lines):
        raise ConversionError("no text in the document")
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(".tmp")
            tmp.write_text(json.dumps({"lines": result.lines, "pages": result.pages}),
                           encoding="utf-8")
            tmp.replace(cached)
        except OSError:  # a read-only data folder only costs speed
            pass
    return result


# --- markitdown: DOCX, PPTX, HTML ----------------------------------------------------------
def _converters() -> dict:
    """markitdown's converter per suffix, called directly: its front door guesses the type
    from the bytes and would read a damaged .docx as plain text."""
    global _CONVERTERS
    with _LOCK:
        if _CONVERTERS is None:
            from markitdown.converters import DocxConverter, HtmlConverter, PptxConverter

            html = HtmlConverter()
            _CONVERTERS = {".docx": DocxConverter(), ".pptx": PptxConverter(),
                           ".html": html, ".htm": html}
        return _CONVERTERS


def _markitdown(data: bytes, suffix: str) -> Converted:
    from markitdown import StreamInfo

    kind = suffix.lstrip(".").upper()
    charset = None
    if suffix in (".html", ".htm"):  # markitdown assumes UTF-8; saved pages may not be
        from bs4 import UnicodeDammit

        charset = UnicodeDammit(data, user_encodings=["utf-8", "windows-1252"],
                                is_html=True).original_encoding  # <meta> first
    try:
        md = _converters()[suffix].convert(
            io.BytesIO(data), StreamInfo(extension=suffix, charset=charset)).markdown
    except Exception as exc:  # the parser's own error: BadZipFile, KeyError, ...
        cause = exc.__cause__ or exc
        raise ConversionError(f"not a readable {kind} file ({type(cause).__name__})") from None
    md = _PERMALINK.sub("", md)
    lines = md.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if suffix != ".pptx":
        return Converted(lines, None)
    pages, slide = [], 0
    for i, line in enumerate(lines):
        match = _SLIDE.match(line.strip())
        if match:
            slide = int(match.group(1))
            lines[i] = ""  # the marker itself is not note text
        pages.append(max(slide, 1))
    return Converted(lines, pages)


# --- PDF: pdfminer.six, page by page --------------------------------------------------------
def _pdf(data: bytes) -> Converted:
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LTChar, LTTextContainer, LTTextLine
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect
    from pdfminer.pdfpage import PDFTextExtractionNotAllowed

    rows: list[tuple[int, str, float]] = []  # (page, text, font size); "" = paragraph break
    try:
        for number, page in enumerate(extract_pages(io.BytesIO(data)), start=1):
            for box in page:
                if not isinstance(box, LTTextContainer):
                    continue
                for line in box:
                    if not isinstance(line, LTTextLine):
                        continue
                    text = " ".join(line.get_text().split())
                    sizes = [c.size for c in line if isinstance(c, LTChar)]
                    if text and sizes:
                        rows.append((number, text, round(max(sizes), 1)))
                rows.append((number, "", 0.0))
    except (PDFPasswordIncorrect, PDFEncryptionError, PDFTextExtractionNotAllowed):
        raise ConversionError("encrypted PDF (needs a password); save an unlocked copy")
    except Exception as exc:  # pdfminer raises many types for damaged files
        raise ConversionError(f"not a readable PDF ({type(exc).__name__})") from None
    if not any(text for _, text, _ in rows):
        raise ConversionError("PDF without a text layer (scanned?); run OCR on it first, "
                              "e.g. ocrmypdf")
    levels = _heading_levels(rows)
    lines: list[str] = []
    pages: list[int] = []
    for page, text, size in rows:
        if not text and (not lines or not lines[-1]):
            continue  # one blank line between paragraphs
        level = levels.get(size) if text and len(text) <= 120 and ". . ." not in text else None
        lines.append(f"{'#' * level} {text}" if level else text)
        pages.append(page)
    return Converted(lines, pages)


def _heading_levels(rows: list[tuple[int, str, float]]) -> dict[float, int]:
    """Font sizes clearly above the body text's (the size most characters have) are
    headings, largest first: # for the largest, ## and ### for the next two."""
    weight: Counter[float] = Counter()
    for _, text, size in rows:
        weight[size] += len(text)
    if not weight:
        return {}
    body = weight.most_common(1)[0][0]
    larger = sorted((s for s in weight if s >= body * 1.15), reverse=True)[:3]
    return {size: level for level, size in enumerate(larger, start=1)}
