"""Generator backends behind one interface: a LangChain chat model chosen by configuration.

* ``registry`` — the table of backends (built-in and plugins), ``auto``, ``get_chat_model``.
* ``embedded`` — SmolLM2-135M-Instruct offline on CPU (``weights``: where the GGUF and its
  dequantised cache are; ``engines``: transformers or llama-cpp-python).
* ``servers`` — Ollama and OpenAI-compatible servers, wrapped by ``guarded``.
* ``errors`` — every failure as one GenerationError line; ``stream`` — timed text streaming.

Names are imported on first use, so that reading the registry (the CLI parser, settings
validation) does not load LangChain.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Backend": "registry",
    "BackendStatus": "registry",
    "ENTRY_POINT_GROUP": "registry",
    "auto_candidates": "registry",
    "backend_choices": "registry",
    "backend_status": "registry",
    "backends": "registry",
    "generator_names": "registry",
    "writes": "registry",
    "get_chat_model": "registry",
    "resolve_backend": "registry",
    "clear_model_cache": "cache",
    "EMBEDDED_GGUF": "weights",
    "EMBEDDED_MODEL": "weights",
    "embedded_cache_dir": "weights",
    "embedded_gguf_path": "weights",
    "EngineKind": "engines",
    "generation_threads": "engines",
    "EmbeddedChatModel": "embedded",
    "GuardedChatModel": "guarded",
    "translate_error": "errors",
    "GenerationStats": "stream",
    "TextStream": "stream",
    "stream_text": "stream",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
