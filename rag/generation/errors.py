"""Client exceptions (httpx, openai, ollama) turned into one GenerationError line that says what
to do: callers never see a traceback or a client library's jargon."""

from __future__ import annotations

from rag.errors import GenerationError


def one_line(text: str, limit: int = 240) -> str:
    """``text`` flattened to one line of at most ``limit`` characters."""
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
    message = one_line(_server_message(exc))

    if isinstance(exc, (httpx.TimeoutException, TimeoutError)) or "Timeout" in name:
        return GenerationError(
            f"{label} did not answer within {timeout_s:g} s — raise "
            "STUDYRAG_ANSWER__TIMEOUT_S, use a smaller model, or choose another backend."
        )
    if isinstance(exc, (httpx.ConnectError, ConnectionError)) or name == "APIConnectionError":
        hint = (
            "start it with `ollama serve`"
            if backend == "ollama"
            else "start the server or fix STUDYRAG_ANSWER__OPENAI_BASE_URL"
        )
        return GenerationError(f"{label} is not reachable — {hint}, or choose another backend.")
    if status in (401, 403):
        return GenerationError(
            f"{label} rejected the API key (HTTP {status}) — set STUDYRAG_ANSWER__OPENAI_API_KEY "
            "or OPENAI_API_KEY."
        )
    if status in (400, 404) and "model" in message.lower():
        if backend == "ollama":
            return GenerationError(
                f"Ollama has no model '{model}' ({message}) — run `ollama pull {model}` or set "
                "STUDYRAG_ANSWER__MODEL to a model from `ollama list`."
            )
        return GenerationError(
            f"{label} does not serve model '{model}' ({message}) — set STUDYRAG_ANSWER__MODEL "
            "to one of the models `study models` lists."
        )
    if status == 404:
        hint = (" (does STUDYRAG_ANSWER__OPENAI_BASE_URL end with /v1?)"
                if backend == "openai" else "")
        return GenerationError(f"{label} answered 404 Not Found{hint}: {message}")
    if status == 429:
        return GenerationError(f"{label} is rate-limiting requests (HTTP 429) — try again later.")
    if isinstance(status, int):
        return GenerationError(f"{label} failed with HTTP {status}: {message}")
    return GenerationError(f"{label} failed: {name}: {message}")
