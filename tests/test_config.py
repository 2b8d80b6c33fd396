"""Malformed settings: every bad value is ONE line that names the setting (never a traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.config import load_settings
from rag.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def study(*args: str, env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (the environment of the test, plus ``env``)."""
    full = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], cwd=REPO, env=full,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith("error:"), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


BAD_ENV = [
    ("STUDYRAG_RETRIEVAL__K", "five", "retrieval.k"),
    ("STUDYRAG_RETRIEVAL__K", "0", "retrieval.k"),
    ("STUDYRAG_RETRIEVAL__K", "", "retrieval.k"),
    ("STUDYRAG_STORAGE__CHROMA_PORT", "70000", "storage.chroma_port"),
    ("STUDYRAG_STORAGE__CHROMA_PORT", "80; rm -rf /", "storage.chroma_port"),
    ("STUDYRAG_STORAGE__CHROMA_TIMEOUT_S", "-3", "storage.chroma_timeout_s"),
    ("STUDYRAG_CHUNKING__SIZE", "1e9", "chunking.size"),
    ("STUDYRAG_CHUNKING__OVERLAP", "lots", "chunking.overlap"),
    ("STUDYRAG_ANSWER__BACKEND", "gpt-17", "answer.backend"),
    ("STUDYRAG_EMBEDDING__BACKEND", "tensorflow", "embedding.backend"),
    ("STUDYRAG_ANSWER__TEMPERATURE", "hot", "answer.temperature"),
    ("STUDYRAG_ANSWER__TEMPERATURE", "nan", "answer.temperature"),
    ("STUDYRAG_STORAGE__MAX_FILE_MB", "0", "storage.max_file_mb"),
    ("STUDYRAG_STORAGE__COLLECTION", "bad name!", "storage.collection"),
    ("STUDYRAG_STORAGE__COLLECTION", "x" * 500, "storage.collection"),
    ("STUDYRAG_ANSWER__UNSUPPORTED", "explode", "answer.unsupported"),
    ("STUDYRAG_RETRIEVAL__ABSTAIN__THRESHOLD", "2", "retrieval.abstain.threshold"),
    ("STUDYRAG_RETRIEVAL__DEDUP_THRESHOLD", "0", "retrieval.dedup_threshold"),
    ("STUDYRAG_VERIFY__SUPPORT_THRESHOLD", "1.5", "verify.support_threshold"),
    ("STUDYRAG_ANSWER__EXTRACTIVE__MAX_LINES", "0", "answer.extractive.max_lines"),
    ("STUDYRAG_RETRIEVAL__TOP_K", "3", "retrieval.top_k"),  # a typo is not ignored
]


@pytest.mark.parametrize("var,value,setting", BAD_ENV)
def test_bad_env_value_is_one_line_naming_the_setting(monkeypatch, var, value, setting):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    assert "\n" not in message
    assert setting in message and var in message, message


def test_bad_override_names_the_setting():
    with pytest.raises(ConfigError, match=r"Invalid setting retrieval.k \(STUDYRAG_RETRIEVAL__K\)"):
        load_settings(retrieval={"k": -1})


def write_config(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "config.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("text,needle", [
    ("k = = 3\n", "not valid TOML"),
    ("[retrieval\nk = 3\n", "not valid TOML"),
    ('[retrieval]\nk = "five"\n', "Invalid setting retrieval.k"),
    ("[retrieval]\nk = 0\n", "Invalid setting retrieval.k"),
    ("[retrieval.abstain]\nthreshold = 5\n", "Invalid setting retrieval.abstain.threshold"),
    ("[chunking]\nsise = 800\n", "Unknown setting chunking.sise"),
    ("[answer]\nmodle = 'x'\nbackend = 'ollama'\n", "Unknown setting answer.modle"),
    ("k = 3\n", "Unknown setting k"),  # a setting lives in its group's table
    ("[generation]\nmodel = 'x'\n", "Unknown setting generation"),
    ("[answer]\nbackend = 42\n", "Invalid setting answer.backend"),
    ("retrieval = 5\n", "Invalid setting retrieval"),
    (b"[retrieval]\nk = 3\n# \xff\xfe broken bytes\n", "not valid TOML"),
    ("", None),  # an empty file is fine
])
def test_config_file_errors(tmp_path, monkeypatch, text, needle):
    monkeypatch.setenv("STUDYRAG_CONFIG", str(write_config(tmp_path, text)))
    if needle is None:
        assert load_settings().retrieval.k == 5
        return
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    assert needle in message, message
    assert "\n" not in message, message


def test_missing_explicit_config_file(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDYRAG_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="STUDYRAG_CONFIG"):
        load_settings()


def test_env_beats_file_and_file_beats_default(tmp_path, monkeypatch):
    text = "[retrieval]\nk = 7\nfetch_k = 20\n[answer]\nbackend = 'extractive'\n"
    monkeypatch.setenv("STUDYRAG_CONFIG", str(write_config(tmp_path, text)))
    monkeypatch.setenv("STUDYRAG_RETRIEVAL__K", "9")
    settings = load_settings()
    assert (settings.retrieval.k, settings.retrieval.fetch_k) == (9, 20)
    assert settings.answer.backend == "extractive"
    # ...and an explicit override beats both, without losing the rest of the group.
    settings = load_settings(retrieval={"k": 3})
    assert (settings.retrieval.k, settings.retrieval.fetch_k) == (3, 20)
    assert settings.updated(answer={"model": "m"}).retrieval.k == 3


def test_prompts_are_settings(tmp_path, monkeypatch):
    text = '[prompts]\nanswer_system = "Answer in French."\n'
    monkeypatch.setenv("STUDYRAG_CONFIG", str(write_config(tmp_path, text)))
    settings = load_settings()
    assert settings.prompts.answer_system == "Answer in French."
    assert "{question}" in settings.prompts.answer_user  # the others keep their defaults


def test_unknown_embedding_model_is_a_config_error():
    from rag.embeddings import resolve_model_path

    with pytest.raises(ConfigError, match="STUDYRAG_EMBEDDING__MODEL") as err:
        resolve_model_path("definitely-not-a-model-v9")
    assert "\n" not in str(err.value)


# --- the same through the real CLI: exit 2, one "error:" line on stderr -----------------
@pytest.mark.parametrize("env,needles", [
    ({"STUDYRAG_RETRIEVAL__K": "five"}, ["STUDYRAG_RETRIEVAL__K"]),
    ({"STUDYRAG_STORAGE__CHROMA_PORT": "-1"}, ["STUDYRAG_STORAGE__CHROMA_PORT"]),
    ({"STUDYRAG_ANSWER__BACKEND": "skynet"}, ["STUDYRAG_ANSWER__BACKEND"]),
    ({"STUDYRAG_EMBEDDING__BACKEND": "abacus"}, ["STUDYRAG_EMBEDDING__BACKEND"]),
    ({"STUDYRAG_ANSWER__EMBEDDED_ENGINE": "vulkan"}, ["STUDYRAG_ANSWER__EMBEDDED_ENGINE"]),
])
def test_cli_bad_env(env, needles):
    assert_one_line_error(study("retrieve", "what is s3", env=env), *needles)


def test_cli_broken_config_file(tmp_path):
    path = write_config(tmp_path, "k = [unclosed\n")
    assert_one_line_error(study("ask", "what is s3", env={"STUDYRAG_CONFIG": str(path)}),
                          "not valid TOML")


def test_cli_unknown_key_in_config_file(tmp_path):
    path = write_config(tmp_path, "[retrieval]\ntop_k = 3\n")
    assert_one_line_error(study("ingest", env={"STUDYRAG_CONFIG": str(path)}), "top_k")


def test_cli_unknown_embedding_model(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# S3\n- S3 stores objects in buckets, durably.\n")
    proc = study("ingest", str(notes), env={"STUDYRAG_EMBEDDING__MODEL": "no-such-model-xyz"})
    assert_one_line_error(proc, "STUDYRAG_EMBEDDING__MODEL", "no-such-model-xyz")


def test_cli_home_is_a_file(tmp_path):
    home = tmp_path / "home-file"
    home.write_text("not a folder")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# S3\n- S3 stores objects in buckets, durably.\n")
    proc = study("ingest", str(notes), env={"STUDYRAG_HOME": str(home)})
    assert_one_line_error(proc, str(home))


def test_cli_llm_judge_without_a_model_server(tmp_path):
    proc = study("eval-verifier", "--judge", "llm",
                 env={"STUDYRAG_HOME": str(tmp_path), "STUDYRAG_ANSWER__BACKEND": "extractive",
                      "STUDYRAG_ANSWER__OLLAMA_HOST": "http://127.0.0.1:9",
                      "STUDYRAG_ANSWER__OPENAI_BASE_URL": ""})
    assert_one_line_error(proc, "--judge llm needs an Ollama or OpenAI-compatible model")


@pytest.mark.parametrize("args", [["eval-verifier", "--name", "../outside"],
                                  ["eval", "--every", "0"], ["bench", "--name", "a b"]])
def test_cli_bad_eval_arguments_stop_before_any_work(args):
    proc = study(*args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith(f"study {args[0]}: error: argument")


def test_cli_missing_notes_folder(tmp_path):
    assert_one_line_error(study("ingest", str(tmp_path / "nowhere")), "does not exist")


def test_an_old_flat_variable_is_refused_naming_its_new_name(monkeypatch):
    """Settings are grouped: STUDYRAG_K would be silently ignored, so it is an error."""
    monkeypatch.setenv("STUDYRAG_K", "3")
    with pytest.raises(ConfigError, match=r"STUDYRAG_K is no longer read .*STUDYRAG_RETRIEVAL__K\."):
        load_settings()
    monkeypatch.delenv("STUDYRAG_K")
    monkeypatch.setenv("STUDYRAG_MODEL", "llama3")  # a name two groups have: both are named
    with pytest.raises(ConfigError, match="STUDYRAG_EMBEDDING__MODEL or STUDYRAG_ANSWER__MODEL"):
        load_settings()
    monkeypatch.delenv("STUDYRAG_MODEL")
    monkeypatch.setenv("STUDYRAG_UPDATE_SCREENSHOTS", "1")  # not a setting: left alone
    assert load_settings(retrieval={"k": 3}).retrieval.k == 3
