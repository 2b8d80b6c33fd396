"""The ONNX embedder runs the exported model with onnxruntime + tokenizers only: its vectors
must be sentence-transformers' (real model, real note text), and it must not import torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import CORPUS, MODEL_CACHE, REPO

HEAVY = ("torch", "transformers", "sentence_transformers", "optimum", "sklearn")


@pytest.fixture(scope="module")
def note_texts() -> list[str]:
    """What ingest embeds: chunk texts and every line of some chunks, in heading context."""
    from rag.chunking import chunk_note
    from rag.config import Settings
    from rag.extractive import line_texts
    from rag.loading import iter_note_paths, load_file

    settings = Settings(storage={"notes_dir": CORPUS})
    chunks = []
    for path in iter_note_paths(CORPUS):
        item = load_file(path, CORPUS, 10**8)
        chunks += chunk_note(item, settings.chunking.size, settings.chunking.overlap,
                             settings.chunking.min_chars)
    picked = chunks[::12]  # every file, long and short chunks
    lines = [t for c in picked[:15] for t in line_texts(c)]
    return [c.embed_text for c in picked] + lines + [
        "What is the maximum execution time of a Lambda function?", "S3", "x " * 400]


@pytest.fixture(scope="module")
def onnx_embedder():
    from rag.embeddings import Embedder

    embedder = Embedder("all-MiniLM-L6-v2", "onnx", MODEL_CACHE, 64, 128)
    assert embedder.backend == "onnx" and embedder.runner is not None
    return embedder


@pytest.mark.parametrize("reference", ["onnx", "torch"])
def test_vectors_match_sentence_transformers(onnx_embedder, note_texts, reference):
    from sentence_transformers import SentenceTransformer

    from rag.embeddings import _onnx_copy, resolve_model_path

    source = resolve_model_path("all-MiniLM-L6-v2")
    if reference == "onnx":
        model = SentenceTransformer(str(_onnx_copy(source, MODEL_CACHE)), device="cpu",
                                    backend="onnx",
                                    model_kwargs={"file_name": "onnx/model.onnx"})
    else:
        model = SentenceTransformer(str(source), device="cpu")
    model.max_seq_length = 128
    expected = model.encode(note_texts, batch_size=64, normalize_embeddings=True,
                            convert_to_numpy=True)
    got = onnx_embedder.encode(note_texts)
    assert got.shape == expected.shape == (len(note_texts), 384)
    assert np.abs(got - expected).max() <= 1e-5
    # Truncation at 128 tokens matters (the long text differs from its first 100 words).
    assert np.abs(got[-1] - onnx_embedder.encode(["x " * 100])[0]).max() > 1e-3


def test_repeated_texts_get_the_same_vectors_in_any_order(onnx_embedder, note_texts):
    texts = note_texts[:30]
    alone = onnx_embedder.encode(texts)
    mixed = onnx_embedder.encode(texts[::-1] + texts[:5])
    assert np.abs(mixed[:30][::-1] - alone).max() <= 1e-6
    assert np.abs(mixed[30:] - alone[:5]).max() <= 1e-6
    assert onnx_embedder.encode([]).shape == (0, 384)
    assert np.allclose(np.linalg.norm(alone, axis=1), 1.0, atol=1e-5)



@pytest.fixture(scope="module")
def int8_embedder(onnx_embedder):
    from rag.embeddings import Embedder

    embedder = Embedder("all-MiniLM-L6-v2", "onnx", MODEL_CACHE, 64, 128, "int8")
    assert embedder.backend == "onnx" and embedder.precision == "int8"
    return embedder


def test_int8_vectors_stay_close_to_fp32_and_keep_neighbours(onnx_embedder, int8_embedder,
                                                             note_texts):
    """int8 is a different model file (the vectors move) that still finds the same texts:
    each note text's int8 vector is nearest to its own fp32 vector among all of them."""
    exact = onnx_embedder.encode(note_texts)
    quick = int8_embedder.encode(note_texts)
    cos = (exact * quick).sum(axis=1)
    assert np.abs(exact - quick).max() > 1e-3
    assert cos.min() >= 0.97 and cos.mean() >= 0.99
    assert np.allclose(np.linalg.norm(quick, axis=1), 1.0, atol=1e-5)
    distinct = list(dict.fromkeys(note_texts))
    sims = int8_embedder.encode(distinct) @ onnx_embedder.encode(distinct).T
    assert (sims.argmax(axis=1) == np.arange(len(distinct))).mean() >= 0.98


def test_int8_model_is_made_once_in_the_cache_and_reused(int8_embedder):
    from rag.embeddings import Embedder

    made = next(MODEL_CACHE.glob("onnx-*/onnx/model-int8.onnx"))
    before = made.stat().st_mtime_ns
    again = Embedder("all-MiniLM-L6-v2", "onnx", MODEL_CACHE, 64, 128, "int8")
    assert made.stat().st_mtime_ns == before and again.precision == "int8"
    assert not list(made.parent.glob("*.tmp.onnx"))
    text = ["Lambda functions run for at most 15 minutes."]
    assert np.abs(again.encode(text) - int8_embedder.encode(text)).max() <= 1e-6


def test_unknown_precision_is_refused():
    from rag.embeddings import Embedder
    from rag.errors import ConfigError

    with pytest.raises(ConfigError, match="fp16"):
        Embedder("all-MiniLM-L6-v2", "onnx", MODEL_CACHE, 64, 128, "fp16")


def test_precision_setting_chooses_the_weights_and_its_own_index(int8_embedder):
    """int8 is a setting; its vectors get their own collection (fingerprint), fp32 keeps the
    fingerprint existing indexes were built with."""
    from rag.config import load_settings
    from rag.embeddings import embedder_for
    from rag.index import fingerprint

    fp32 = load_settings(storage={"model_cache_dir": str(MODEL_CACHE)})
    int8 = fp32.updated(embedding={"precision": "int8"})
    assert embedder_for(int8).precision == "int8" and embedder_for(fp32).precision == "fp32"
    assert fingerprint(int8) != fingerprint(fp32)
    assert fingerprint(fp32) == fingerprint(load_settings())
    with pytest.raises(Exception, match="precision"):
        load_settings(embedding={"precision": "fp16"})

def test_onnx_embedding_imports_no_torch(onnx_embedder):
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from rag.embeddings import Embedder\n"
        f"e = Embedder('all-MiniLM-L6-v2', 'onnx', Path({str(MODEL_CACHE)!r}), 64, 128)\n"
        "v = e.encode(['What is S3?'])\n"
        f"print(json.dumps([e.backend, [m for m in {HEAVY!r} if m in sys.modules]]))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=120, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["onnx", []]


def test_study_ask_process_loads_no_torch_nor_the_eval_harness(corpus_settings):
    """A one-shot extractive `study ask` in its own process: answered, with none of the heavy
    libraries and not the eval modules in sys.modules (checked from inside that process)."""
    code = (
        "import atexit, json, sys\n"
        "from rag.cli import main\n"
        "rc = main(['ask', '--json', '--extractive', 'What is the maximum execution time of "
        "a Lambda function?'])\n"
        f"print(json.dumps([m for m in {HEAVY + ('evals', 'evals.cli')!r} "
        "if m in sys.modules]))\n"
        "sys.exit(rc)\n")
    env = {**os.environ, "STUDYRAG_HOME": str(corpus_settings.home),
           "STUDYRAG_STORAGE__NOTES_DIR": str(CORPUS)}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stderr
    answer_line, loaded = out.stdout.strip().splitlines()[-2:]
    assert "15 minutes" in json.loads(answer_line)["answer"]
    assert json.loads(loaded) == []
