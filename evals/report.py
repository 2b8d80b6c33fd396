"""Report files: ``evals/reports/<date>-<name>.{md,json}``, and the tables in them."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import sys
from pathlib import Path

from rag.errors import InputError

from evals import REPORTS


def fmt(value) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3f}"
    return str(value)


_REPORT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_report_name(name: str) -> str:
    """A report name is a plain file-name stem (it goes into evals/reports/<date>-<name>)."""
    if not _REPORT_NAME.fullmatch(name or "") or len(name) > 100:
        raise InputError(f"Report name {name!r} must be letters, digits, '.', '_' or '-' "
                         "(no folders), e.g. --name dev-quick.")
    return name


def write_report(name: str, data: dict, markdown: str, folder: Path = REPORTS,
                 dated: bool = True) -> Path:
    """Write ``<date>-<name>.json`` and ``.md`` (no date prefix for standing reports)."""
    check_report_name(name)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{dt.date.today().isoformat()}-{name}" if dated else name
    (folder / f"{stem}.json").write_text(json.dumps(data, indent=2, default=str) + "\n",
                                         encoding="utf-8")
    path = folder / f"{stem}.md"
    path.write_text(markdown, encoding="utf-8")
    return path


def command_line() -> str:
    return "study " + " ".join(sys.argv[1:]) if sys.argv and "study" in sys.argv[0] else \
        " ".join(sys.argv)


def table(rows: dict[str, dict], columns: list[str]) -> str:
    head = "| | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns) + "\n"
    return head + "".join(
        f"| {name} | " + " | ".join(fmt(r.get(c, float("nan"))) for c in columns) + " |\n"
        for name, r in rows.items())


def publish(name: str, data: dict, markdown: list[str]) -> int:
    """A command's last step: write its report, print it and say where it went."""
    text = "\n".join(markdown)
    path = write_report(name, data, text)
    print(text)
    print(f"Report: {path} (+ .json)")
    return 0
