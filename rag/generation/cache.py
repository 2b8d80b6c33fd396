"""The process-wide model cache: weights load lazily and at most once per process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any


class ModelCache:
    """Each key's factory runs at most once, even across threads.

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


MODELS = ModelCache()


def clear_model_cache() -> None:
    """Forget every loaded model (tests; or to free memory in a long-lived process)."""
    MODELS.clear()
