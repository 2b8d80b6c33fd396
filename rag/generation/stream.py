"""Streaming any chat model's answer as text pieces, timed (time to first token, decode rate)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import BaseMessage

from rag.errors import GenerationError
from rag.generation.errors import translate_error
from rag.generation.guarded import GuardedChatModel


@dataclass
class GenerationStats:
    """Latency and speed of one streamed answer (decode rate excludes time to first token)."""

    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    n_tokens: int = 0
    total_ms: float | None = None




@dataclass
class TextStream:
    """Iterator of text pieces; ``stats`` is complete once it is exhausted (or closed).

    Any failure, from any chat model, is raised as GenerationError.
    """

    chat_model: Any
    messages: LanguageModelInput
    stats: GenerationStats = field(default_factory=GenerationStats)
    text: str = ""
    _pieces: Iterator[str] | None = field(default=None, init=False, repr=False)

    def __iter__(self) -> TextStream:
        return self

    def __next__(self) -> str:
        if self._pieces is None:
            self._pieces = self._run()
        return next(self._pieces)

    def close(self) -> None:
        if self._pieces is not None:
            self._pieces.close()

    def _run(self) -> Iterator[str]:
        started = time.perf_counter()
        first: float | None = None
        n_chunks = 0
        reported: int | None = None
        try:
            for chunk in self.chat_model.stream(self.messages):
                usage = getattr(chunk, "usage_metadata", None)
                if usage and usage.get("output_tokens"):
                    reported = int(usage["output_tokens"])
                piece = _chunk_text(chunk)
                if not piece:
                    continue
                if first is None:
                    first = time.perf_counter()
                    self.stats.ttft_ms = (first - started) * 1000
                n_chunks += 1
                self.text += piece
                yield piece
        except GenerationError:
            raise
        except Exception as exc:
            raise _translate_for(self.chat_model, exc) from exc
        finally:
            end = time.perf_counter()
            n_tokens = reported if reported is not None else n_chunks
            self.stats.n_tokens = n_tokens
            self.stats.total_ms = (end - started) * 1000
            if first is not None and n_tokens > 1 and end > first:
                self.stats.tokens_per_s = (n_tokens - 1) / (end - first)


def _chunk_text(chunk: Any) -> str:
    if isinstance(chunk, str):
        return chunk
    if isinstance(chunk, BaseMessage):
        return chunk.text
    content = getattr(chunk, "content", "")
    return content if isinstance(content, str) else str(content or "")


def _translate_for(chat_model: Any, exc: BaseException) -> GenerationError:
    if isinstance(chat_model, GuardedChatModel):
        return chat_model._fail(exc)
    label = getattr(chat_model, "_llm_type", type(chat_model).__name__)
    return translate_error(exc, str(label), "", str(getattr(chat_model, "model", "") or ""))


def stream_text(chat_model: Any, messages: LanguageModelInput) -> TextStream:
    """Stream ``chat_model``'s answer as text pieces; read ``.stats`` after exhausting it."""
    return TextStream(chat_model, messages)
