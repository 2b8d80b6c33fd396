"""A chat model that replies with queued texts, like simonw/llm's ``MockModel.enqueue``.

It is langchain-core's ``GenericFakeChatModel`` (which streams a reply word by word), with a
queue that a test fills and a record of every prompt it was sent::

    model = QueuedModel().enqueue("S3 stores objects [1].")
    answer = Tutor(settings, search, model=model).ask("What does S3 store?")
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field


class QueuedModel(GenericFakeChatModel):
    """Each call takes the next queued reply; a queued exception is raised instead. A call
    with nothing queued fails the test instead of inventing a reply."""

    messages: Iterator[AIMessage | str] = Field(default_factory=lambda: iter(()))
    queue: list[str | BaseException] = Field(default_factory=list)
    sent: list[str] = Field(default_factory=list)  # each prompt, its messages joined

    def enqueue(self, *replies: str | BaseException) -> QueuedModel:
        self.queue.extend(replies)
        return self

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        self.sent.append("\n".join(m.text for m in messages))
        assert self.queue, f"unexpected call to the model: {self.sent[-1][:200]}"
        reply = self.queue.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=reply))])
