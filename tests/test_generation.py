"""Generator backends: the real embedded SmolLM2, and real HTTP clients against a local stub."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from openai_stub import OpenAIStub

from rag.config import Settings, load_settings
from rag.errors import GenerationError
from rag.generation import (
    EmbeddedChatModel,
    GuardedChatModel,
    backend_status,
    backends,
    embedded_cache_dir,
    embedded_gguf_path,
    get_chat_model,
    resolve_backend,
    stream_text,
)
from rag.generation.embedded import _apply_stop
from rag.generation.engines import GenParams, Usage, load_transformers_engine
from rag.generation.weights import cache_is_valid

MakeSettings = Callable[..., Settings]
QUESTION = [
    SystemMessage("You are a concise AWS study tutor."),
    HumanMessage("What does Amazon S3 store? Answer in one short sentence."),
]


def _importable_llama_cpp() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def _closed_port() -> int:
    """A localhost port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def model_cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shared across tests (and across runs via STUDYRAG_TEST_MODEL_CACHE) so the ~15 s
    GGUF dequantisation is paid once, not per test."""
    configured = os.environ.get("STUDYRAG_TEST_MODEL_CACHE")
    root = Path(configured) if configured else tmp_path_factory.mktemp("model-cache")
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture
def make_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_cache_root: Path
) -> MakeSettings:
    """Settings with a private STUDYRAG_HOME whose model cache links to the shared one."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    home = tmp_path / "home"
    (home / "cache").mkdir(parents=True, exist_ok=True)
    (home / "cache" / "smollm2").symlink_to(model_cache_root / "smollm2", target_is_directory=True)
    monkeypatch.setenv("STUDYRAG_HOME", str(home))

    def make(**groups: Any) -> Settings:
        answer = {"ollama_host": f"http://127.0.0.1:{_closed_port()}", **groups.pop("answer", {})}
        return load_settings(answer=answer, **groups)

    return make


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub(reply="Amazon S3 stores objects in buckets [1].") as server:
        yield server


# --- embedded (real model, no mocks) ----------------------------------------------------------


def test_embedded_model_streams_a_short_answer(make_settings: MakeSettings) -> None:
    settings = make_settings(answer={"max_new_tokens": 40, "embedded_engine": "transformers"})
    model = get_chat_model(settings, "embedded")
    assert isinstance(model, EmbeddedChatModel)

    stream = stream_text(model, QUESTION)
    pieces = list(stream)

    answer = "".join(pieces).strip()
    assert answer and "<|im_end|>" not in answer
    assert stream.text == "".join(pieces)
    assert 0 < stream.stats.n_tokens <= 40
    assert stream.stats.ttft_ms is not None and stream.stats.ttft_ms > 0
    assert cache_is_valid(embedded_cache_dir(settings), embedded_gguf_path())


@pytest.mark.slow
def test_dequantised_cache_loads_faster_and_answers_identically(tmp_path: Path) -> None:
    gguf = embedded_gguf_path()
    assert gguf is not None
    params = GenParams(max_new_tokens=24, temperature=0.0, repetition_penalty=1.15,
                        timeout_s=60.0, threads=1)
    messages = [{"role": "user", "content": "Name one AWS storage service."}]

    started = time.perf_counter()
    cold = load_transformers_engine(gguf, tmp_path / "smollm2")
    cold_s = time.perf_counter() - started
    assert cache_is_valid(tmp_path / "smollm2", gguf)
    started = time.perf_counter()
    warm = load_transformers_engine(gguf, tmp_path / "smollm2")
    warm_s = time.perf_counter() - started

    assert "cached" in warm.description and "GGUF" in cold.description
    assert warm_s < cold_s / 3
    cold_text = "".join(cold.stream(messages, params, Usage()))
    warm_text = "".join(warm.stream(messages, params, Usage()))
    assert cold_text == warm_text != ""


# --- status & selection ------------------------------------------------------------------------


def _llama_cpp_server_available() -> bool:
    try:
        import llama_cpp.server.app  # noqa: F401  (optional: needs the [server] extras)
    except Exception:
        return False
    return embedded_gguf_path() is not None


@pytest.mark.slow
@pytest.mark.skipif(not _importable_llama_cpp(), reason="llama-cpp-python is not installed")
def test_embedded_model_on_llama_cpp_streams(make_settings: MakeSettings) -> None:
    settings = make_settings(answer={"max_new_tokens": 40, "embedded_engine": "llama_cpp"})
    stream = stream_text(get_chat_model(settings, "embedded"), QUESTION)
    pieces = list(stream)
    assert len(pieces) > 1 and "".join(pieces).strip()
    assert 0 < stream.stats.n_tokens <= 40 and stream.stats.tokens_per_s


@pytest.mark.slow
@pytest.mark.skipif(not _llama_cpp_server_available(),
                    reason="llama-cpp-python[server] is not installed")
def test_openai_backend_against_a_real_llama_cpp_server(make_settings: MakeSettings) -> None:
    """The OpenAI-compatible backend end to end against llama.cpp's own server and a real model."""
    import subprocess
    import sys

    port = _closed_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_gguf_path()),
         "--port", str(port), "--model_alias", "smollm2", "--n_threads", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        settings = make_settings(answer={"backend": "openai", "openai_base_url": base,
                                         "model": "smollm2", "max_new_tokens": 30})
        status = {s.name: s for s in backend_status(settings)}["openai"]
        assert status.usable and "smollm2" in status.detail
        stream = stream_text(get_chat_model(settings, "openai"), QUESTION)
        pieces = list(stream)
        assert len(pieces) > 1 and stream.text.strip() and stream.stats.ttft_ms
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_backend_status_lists_four_backends_and_embedded_is_usable(
    make_settings: MakeSettings,
) -> None:
    started = time.perf_counter()
    statuses = backend_status(make_settings())
    assert time.perf_counter() - started < 5

    assert [s.name for s in statuses] == list(backends())
    by_name = {s.name: s for s in statuses}
    assert by_name["extractive"].usable
    assert by_name["embedded"].usable
    assert by_name["embedded"].model == "SmolLM2-135M-Instruct"
    assert not by_name["openai"].usable
    assert "STUDYRAG_ANSWER__OPENAI_BASE_URL" in by_name["openai"].detail


def test_unknown_backend_is_a_clear_error(make_settings: MakeSettings) -> None:
    with pytest.raises(GenerationError, match="Unknown backend 'gpt9'.*embedded"):
        get_chat_model(make_settings(), "gpt9")


def test_extractive_backend_has_no_chat_model(make_settings: MakeSettings) -> None:
    with pytest.raises(GenerationError, match="extractive"):
        get_chat_model(make_settings(), "extractive")


def test_auto_without_servers_means_embedded(make_settings: MakeSettings) -> None:
    settings = make_settings(answer={"model": "llama3.2"})  # ollama configured but not running
    assert resolve_backend(settings) == "embedded"
    assert isinstance(get_chat_model(settings), EmbeddedChatModel)


def test_chat_models_are_cached_per_process(make_settings: MakeSettings) -> None:
    settings = make_settings()
    assert get_chat_model(settings, "embedded") is get_chat_model(settings, "embedded")


# --- ollama -------------------------------------------------------------------------------------


def test_ollama_at_a_closed_port_fails_fast_and_clearly(make_settings: MakeSettings) -> None:
    port = _closed_port()
    settings = make_settings(answer={"ollama_host": f"http://127.0.0.1:{port}",
                                     "model": "llama3.2"})

    started = time.perf_counter()
    status = {s.name: s for s in backend_status(settings)}["ollama"]
    with pytest.raises(GenerationError, match=f"127.0.0.1:{port}.*ollama serve"):
        get_chat_model(settings, "ollama")
    assert time.perf_counter() - started < 5

    assert not status.usable
    assert "not reachable" in status.detail and "ollama serve" in status.detail


def test_ollama_streams_through_chat_ollama(make_settings: MakeSettings, stub: OpenAIStub) -> None:
    settings = make_settings(answer={"ollama_host": stub.root_url, "model": "stub-model"})
    status = {s.name: s for s in backend_status(settings)}["ollama"]
    assert status.usable and "stub-model" in status.detail

    model = get_chat_model(settings, "ollama")
    stream = stream_text(model, QUESTION)
    assert "".join(stream) == stub.reply
    assert stream.stats.n_tokens == len(stub.pieces())
    assert stub.requests[-1]["model"] == "stub-model"


def test_ollama_missing_model_says_pull_it(make_settings: MakeSettings, stub: OpenAIStub) -> None:
    settings = make_settings(answer={"ollama_host": stub.root_url, "model": "qwen9"})
    with pytest.raises(GenerationError, match="ollama pull qwen9"):
        get_chat_model(settings, "ollama")


# --- openai-compatible ------------------------------------------------------------------------


def test_openai_compatible_server_streams_canned_text(
    make_settings: MakeSettings, stub: OpenAIStub
) -> None:
    settings = make_settings(answer={"openai_base_url": stub.base_url, "model": "stub-model",
                                     "max_new_tokens": 50})
    status = {s.name: s for s in backend_status(settings)}["openai"]
    assert status.usable and "stub-model" in status.detail

    model = get_chat_model(settings, "openai")
    assert isinstance(model, GuardedChatModel)
    stream = stream_text(model, QUESTION)
    pieces = list(stream)

    assert "".join(pieces) == stub.reply
    assert len(pieces) == len(stub.pieces())  # really streamed, chunk by chunk
    assert stream.stats.n_tokens == len(stub.pieces()) and stream.stats.ttft_ms is not None
    request = stub.requests[-1]
    assert request["stream"] is True and request["model"] == "stub-model"
    assert request["messages"][0] == {"role": "system", "content": QUESTION[0].content}
    assert model.invoke(QUESTION).content == stub.reply  # non-streaming JSON path too


def test_openai_without_model_uses_the_first_listed(
    make_settings: MakeSettings, stub: OpenAIStub
) -> None:
    settings = make_settings(answer={"openai_base_url": stub.base_url, "backend": "auto"})
    assert resolve_backend(settings) == "openai"
    assert "".join(stream_text(get_chat_model(settings), QUESTION)) == stub.reply


def test_openai_http_500_becomes_generation_error(make_settings: MakeSettings) -> None:
    with OpenAIStub(status=500) as failing:
        settings = make_settings(answer={"openai_base_url": failing.base_url,
                                         "model": "stub-model"})
        model = get_chat_model(settings, "openai")
        with pytest.raises(GenerationError, match="HTTP 500.*stub failure"):
            list(stream_text(model, QUESTION))
        with pytest.raises(GenerationError, match="HTTP 500"):
            model.invoke(QUESTION)


def test_openai_unknown_model_is_reported(make_settings: MakeSettings, stub: OpenAIStub) -> None:
    settings = make_settings(answer={"openai_base_url": stub.base_url, "model": "gpt-nope"})
    status = {s.name: s for s in backend_status(settings)}["openai"]
    assert "'gpt-nope' is not among" in status.detail
    with pytest.raises(GenerationError, match="does not serve model 'gpt-nope'"):
        list(stream_text(get_chat_model(settings, "openai"), QUESTION))


def test_openai_wrong_key_is_reported(make_settings: MakeSettings) -> None:
    with OpenAIStub(api_key="right") as guarded:
        settings = make_settings(answer={"openai_base_url": guarded.base_url,
                                         "openai_api_key": "wrong"})
        with pytest.raises(GenerationError, match="rejected the API key"):
            get_chat_model(settings, "openai")
        good = make_settings(answer={"openai_base_url": guarded.base_url,
                                     "openai_api_key": "right", "model": "stub-model"})
        assert get_chat_model(good, "openai").invoke(QUESTION).content == guarded.reply


def test_openai_unreachable_is_reported(make_settings: MakeSettings) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    with pytest.raises(GenerationError, match="not reachable"):
        get_chat_model(make_settings(answer={"openai_base_url": url, "model": "m"}), "openai")


# --- helpers ----------------------------------------------------------------------------------


class _BrokenChatModel(BaseChatModel):
    """Fails the way an unwrapped client does: with a raw httpx exception."""

    @property
    def _llm_type(self) -> str:
        return "broken"

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        raise httpx.ConnectError("connection refused")

    def _stream(
        self, messages: list[BaseMessage], *args: Any, **kwargs: Any
    ) -> Iterator[ChatGenerationChunk]:
        raise httpx.ConnectError("connection refused")


def test_stream_text_turns_raw_exceptions_into_generation_error() -> None:
    with pytest.raises(GenerationError, match="not reachable"):
        list(stream_text(_BrokenChatModel(), QUESTION))


@pytest.mark.parametrize(
    ("pieces", "stop", "expected"),
    [
        (["Answer [1].", "\nQuestion: more"], ["\nQuestion:"], "Answer [1]."),
        (["Ans", "wer\nQu", "estion: x"], ["\nQuestion:"], "Answer"),
        (["no stop ", "here"], ["###"], "no stop here"),
        (["abc"], None, "abc"),
    ],
)
def test_stop_strings_cut_the_stream(pieces: list[str], stop: list[str] | None,
                                     expected: str) -> None:
    assert "".join(_apply_stop(iter(pieces), stop)) == expected
