"""A real local HTTP server that speaks just enough of the OpenAI and Ollama APIs for tests.

Tests exercise the genuine ``ChatOpenAI``/``ChatOllama`` clients end to end (HTTP, SSE/NDJSON
parsing, error mapping) without a model server::

    with OpenAIStub(reply="S3 stores objects [1].") as stub:
        settings = load_settings(openai_base_url=stub.base_url, model=stub.models[0])

Served routes: ``GET /v1/models``, ``POST /v1/chat/completions`` (JSON or SSE when
``"stream": true``), ``GET /api/tags`` and ``POST /api/chat`` (NDJSON stream or JSON).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class OpenAIStub:
    """Serves canned ``reply`` text; ``status`` != 200 makes every chat request fail with it.

    ``requests`` records the JSON body of every chat request, for assertions. A model not in
    ``models`` gets the 404 "model not found" answer real servers give. ``api_key`` (optional)
    must then be sent as a Bearer token, else 401.
    """

    def __init__(
        self,
        reply: str = "Amazon S3 stores objects in buckets [1].",
        *,
        models: Sequence[str] = ("stub-model",),
        status: int = 200,
        delay_s: float = 0.0,
        api_key: str | None = None,
    ) -> None:
        self.reply = reply
        self.models = list(models)
        self.status = status
        self.delay_s = delay_s
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        """Use as ``ollama_host``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """Use as ``openai_base_url``."""
        return f"{self.root_url}/v1"

    def pieces(self) -> list[str]:
        """How the reply is split into stream chunks (word by word, spaces kept)."""
        words = self.reply.split(" ")
        return [w + " " for w in words[:-1]] + [words[-1]]

    def start(self) -> OpenAIStub:
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="openai-stub",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _handler_for(stub: OpenAIStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            return

        # --- helpers ---------------------------------------------------------------------
        def _json(self, status: int, payload: Any) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"{}")

        def _authorised(self) -> bool:
            if stub.api_key is None:
                return True
            if self.headers.get("Authorization") == f"Bearer {stub.api_key}":
                return True
            self._json(401, {"error": {"message": "Incorrect API key provided.",
                                       "type": "invalid_request_error"}})
            return False

        # --- routes ----------------------------------------------------------------------
        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                if self._authorised():
                    data = [{"id": m, "object": "model", "created": 0, "owned_by": "stub"}
                            for m in stub.models]
                    self._json(200, {"object": "list", "data": data})
            elif self.path.rstrip("/") == "/api/tags":
                self._json(200, {"models": [{"name": m, "model": m} for m in stub.models]})
            else:
                self._json(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            if self.path.rstrip("/").endswith("/chat/completions"):
                self._openai_chat()
            elif self.path.rstrip("/") == "/api/chat":
                self._ollama_chat()
            else:
                self._json(404, {"error": {"message": f"no route {self.path}"}})

        def _openai_chat(self) -> None:
            request = self._body()
            stub.requests.append(request)
            if not self._authorised():
                return
            if stub.delay_s:
                time.sleep(stub.delay_s)
            if stub.status != 200:
                self._json(stub.status, {"error": {"message": "stub failure",
                                                   "type": "server_error"}})
                return
            model = request.get("model", "")
            if model not in stub.models:
                self._json(404, {"error": {
                    "message": f"The model `{model}` does not exist.",
                    "type": "invalid_request_error", "code": "model_not_found"}})
                return
            base = {"id": "chatcmpl-stub", "created": 0, "model": model}
            if not request.get("stream"):
                self._json(200, {
                    **base, "object": "chat.completion",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": stub.reply}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": len(stub.pieces()),
                              "total_tokens": 10 + len(stub.pieces())},
                })
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            chunk = {**base, "object": "chat.completion.chunk"}
            events: list[dict[str, Any]] = [
                {**chunk, "choices": [{"index": 0, "finish_reason": None,
                                       "delta": {"role": "assistant", "content": piece}}]}
                for piece in stub.pieces()
            ]
            events.append({**chunk, "choices": [{"index": 0, "delta": {},
                                                 "finish_reason": "stop"}]})
            if (request.get("stream_options") or {}).get("include_usage"):
                events.append({**chunk, "choices": [], "usage": {
                    "prompt_tokens": 10, "completion_tokens": len(stub.pieces()),
                    "total_tokens": 10 + len(stub.pieces())}})
            for event in events:
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

        def _ollama_chat(self) -> None:
            request = self._body()
            stub.requests.append(request)
            model = request.get("model", "")
            if stub.status != 200:
                self._json(stub.status, {"error": "stub failure"})
                return
            if model not in stub.models:
                self._json(404, {"error": f"model '{model}' not found"})
                return
            base = {"model": model, "created_at": "2025-01-01T00:00:00Z"}
            done = {**base, "message": {"role": "assistant", "content": ""}, "done": True,
                    "done_reason": "stop", "prompt_eval_count": 10,
                    "eval_count": len(stub.pieces())}
            if request.get("stream") is False:
                self._json(200, {**done, "message": {"role": "assistant",
                                                     "content": stub.reply}})
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.end_headers()
            for piece in stub.pieces():
                line = {**base, "message": {"role": "assistant", "content": piece},
                        "done": False}
                self.wfile.write((json.dumps(line) + "\n").encode())
                self.wfile.flush()
            self.wfile.write((json.dumps(done) + "\n").encode())
            self.wfile.flush()
            self.close_connection = True

    return Handler
