"""GuardedChatModel: a network chat model (Ollama, OpenAI-compatible) whose every failure
reaches callers as one GenerationError line."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from rag.errors import GenerationError
from rag.generation.errors import translate_error


class GuardedChatModel(BaseChatModel):
    """Delegates to a network chat model and turns each of its failures into a GenerationError.

    Raw httpx/openai/ollama exceptions carry tracebacks and jargon; callers get one line that
    names the server and what to do. ``inner`` stays reachable for inspection.
    """

    inner: BaseChatModel
    backend: str
    target: str
    model: str
    timeout_s: float = 60.0

    @property
    def _llm_type(self) -> str:
        return f"studyrag-{self.backend}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"backend": self.backend, "target": self.target, "model": self.model}

    def _fail(self, exc: BaseException) -> GenerationError:
        return translate_error(exc, self.backend, self.target, self.model, self.timeout_s)

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Re-raise whatever the inner client raises as one GenerationError line."""
        try:
            yield
        except GenerationError:
            raise
        except Exception as exc:
            raise self._fail(exc) from exc

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        with self._translated():
            for message in self.inner.stream(messages, stop=stop, **kwargs):
                chunk = ChatGenerationChunk(message=message)
                if run_manager and message.text:
                    run_manager.on_llm_new_token(message.text, chunk=chunk)
                yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        with self._translated():
            async for message in self.inner.astream(messages, stop=stop, **kwargs):
                yield ChatGenerationChunk(message=message)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._translated():
            return _result(self.inner.invoke(messages, stop=stop, **kwargs))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._translated():
            return _result(await self.inner.ainvoke(messages, stop=stop, **kwargs))


def _result(message: BaseMessage) -> ChatResult:
    if not isinstance(message, AIMessage):
        message = AIMessage(content=message.content)
    return ChatResult(generations=[ChatGeneration(message=message)])
