"""Reading JSONL files (batch questions, dev sets, labelled pairs) with errors that name the line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from rag.errors import InputError


def read_jsonl(path: str | Path, what: str = "File") -> Iterator[tuple[int, dict]]:
    """Yield ``(line number, object)`` for every non-blank line; a missing file, invalid JSON
    or a line that is not an object is an :class:`InputError` naming the file and line."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{what} {path} does not exist.")
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number}: not valid JSON ({exc.msg}).") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}:{number}: expected a JSON object.")
        yield number, row
