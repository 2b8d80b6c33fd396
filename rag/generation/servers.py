"""The two HTTP backends: Ollama (``ChatOllama``) and any OpenAI-compatible server
(``ChatOpenAI``): their status probes, which never hang, and their guarded chat models."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rag.config import Settings
from rag.generation.errors import one_line, translate_error
from rag.generation.registry import BackendStatus

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from rag.generation.guarded import GuardedChatModel

OLLAMA_PROBE_TIMEOUT_S = 1.5
OPENAI_PROBE_TIMEOUT_S = 2.0


def normalise_url(url: str) -> str:
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
    return settings.answer.openai_api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"


def _ollama_model_names(payload: Any) -> list[str]:
    models = payload.get("models", []) if isinstance(payload, dict) else []
    return [str(m.get("name") or m.get("model")) for m in models if isinstance(m, dict)]


def _ollama_has(names: Sequence[str], model: str) -> bool:
    wanted = {model, model if ":" in model else f"{model}:latest"}
    return any(name in wanted for name in names)


def ollama_status(settings: Settings) -> BackendStatus:
    host = normalise_url(settings.answer.ollama_host)
    model = settings.answer.model
    try:
        names = _ollama_model_names(_get_json(f"{host}/api/tags", OLLAMA_PROBE_TIMEOUT_S))
    except Exception as exc:
        return BackendStatus(
            "ollama", model, False,
            f"Ollama is not reachable at {host} ({one_line(str(exc) or type(exc).__name__, 80)})"
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
            f"Ollama at {host} is running with {listing} — set STUDYRAG_ANSWER__MODEL to one of "
            "them.",
        )
    if not _ollama_has(names, model):
        return BackendStatus(
            "ollama", model, False,
            f"Ollama at {host} has no model '{model}' — run `ollama pull {model}` "
            f"or pick one of: {listing}.",
        )
    return BackendStatus("ollama", model, True, f"running at {host}; models: {listing}.")


def openai_status(settings: Settings) -> BackendStatus:
    if not settings.answer.openai_base_url.strip():
        return BackendStatus(
            "openai", settings.answer.model, False,
            "Not configured — set STUDYRAG_ANSWER__OPENAI_BASE_URL "
            "(e.g. http://localhost:8000/v1).",
        )
    base = normalise_url(settings.answer.openai_base_url)
    try:
        payload = _get_json(f"{base}/models", OPENAI_PROBE_TIMEOUT_S, _openai_headers(settings))
    except Exception as exc:
        error = translate_error(exc, "openai", base, settings.answer.model, OPENAI_PROBE_TIMEOUT_S)
        detail = str(error)
        if isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__:
            detail = (
                f"The OpenAI-compatible server at {base} did not answer within "
                f"{OPENAI_PROBE_TIMEOUT_S:g} s — check STUDYRAG_ANSWER__OPENAI_BASE_URL or "
                "choose another backend."
            )
        return BackendStatus("openai", settings.answer.model, False, detail)
    data = payload.get("data", []) if isinstance(payload, dict) else []
    ids = [str(m.get("id")) for m in data if isinstance(m, dict) and m.get("id")]
    listing = ", ".join(ids[:8]) + (f" (+{len(ids) - 8} more)" if len(ids) > 8 else "")
    model = settings.answer.model
    if not model:
        if not ids:
            return BackendStatus(
                "openai", "", False,
                f"The server at {base} lists no models — set STUDYRAG_ANSWER__MODEL.",
            )
        return BackendStatus(
            "openai", ids[0], True,
            f"reachable at {base}; STUDYRAG_ANSWER__MODEL unset, using '{ids[0]}' "
            f"(models: {listing}).",
        )
    if ids and model not in ids:
        # Some servers (aliases, routers) accept names they do not list: warn, don't block.
        return BackendStatus(
            "openai", model, True,
            f"reachable at {base}, but '{model}' is not among its models ({listing}).",
        )
    return BackendStatus("openai", model, True, f"reachable at {base}; models: {listing}.")


def _guard(inner: BaseChatModel, backend: str, target: str, model: str,
           settings: Settings) -> GuardedChatModel:
    from rag.generation.guarded import GuardedChatModel

    return GuardedChatModel(inner=inner, backend=backend, target=target, model=model,
                            timeout_s=settings.answer.timeout_s)


def ollama_cache_key(settings: Settings, status: BackendStatus) -> tuple[Any, ...]:
    return (status.model, normalise_url(settings.answer.ollama_host))


def make_ollama(settings: Settings, status: BackendStatus) -> GuardedChatModel:
    from langchain_ollama import ChatOllama

    host = normalise_url(settings.answer.ollama_host)
    inner = ChatOllama(
        model=status.model,
        base_url=host,
        temperature=settings.answer.temperature,
        num_predict=settings.answer.max_new_tokens,
        client_kwargs={"timeout": settings.answer.timeout_s},
    )
    return _guard(inner, "ollama", host, status.model, settings)


def openai_cache_key(settings: Settings, status: BackendStatus) -> tuple[Any, ...]:
    return (status.model, normalise_url(settings.answer.openai_base_url), _openai_key(settings))


def make_openai(settings: Settings, status: BackendStatus) -> GuardedChatModel:
    from langchain_openai import ChatOpenAI

    base = normalise_url(settings.answer.openai_base_url)
    inner = ChatOpenAI(
        model=status.model,
        base_url=base,
        api_key=_openai_key(settings),
        timeout=settings.answer.timeout_s,
        max_retries=1,
        temperature=settings.answer.temperature,
        max_tokens=settings.answer.max_new_tokens,
    )
    return _guard(inner, "openai", base, status.model, settings)
