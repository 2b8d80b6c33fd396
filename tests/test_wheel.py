"""The built wheel, installed outside the checkout, indexes a folder and answers with citations.

The wheel is built from a copy of the sources (nothing is written into the checkout) and
installed with ``--no-deps`` into a fresh venv. That venv sees the dependencies of ``.venv``
through a plain path line (not its ``.pth`` files, so not the editable install's finder): the
only ``rag`` it can import is the installed one. Nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import MODEL_CACHE, REPO

pytestmark = pytest.mark.slow

SOURCES = ["pyproject.toml", "README.md", "rag", "evals", "corpus"]
LAMBDA_Q = "What is the maximum execution time of a Lambda function?"


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None,
        timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (cmd, proc.stdout[-2000:], proc.stderr[-3000:])
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin folder of a fresh venv with only the wheel of studyrag installed."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    for name in SOURCES:
        from_, to = REPO / name, src / name
        if from_.is_dir():
            shutil.copytree(from_, to, ignore=shutil.ignore_patterns("__pycache__", "reports",
                                                                     "datasets"))
        else:
            to.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(from_, to)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w",
         str(root / "dist"), str(src)], cwd=root)
    wheel, = (root / "dist").glob("studyrag-*.whl")

    venv = root / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        cwd=root)
    python = venv / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                     "['purelib'])"], cwd=root).stdout.strip())
    (site / "studyrag-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)], cwd=root)
    return venv / "bin"


def study_env(home: Path) -> dict[str, str]:
    """A clean environment: no STUDYRAG_* or PYTHONPATH of the test run, offline."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home.parent),
            "STUDYRAG_HOME": str(home), "STUDYRAG_STORAGE__MODEL_CACHE_DIR": str(MODEL_CACHE),
            "STUDYRAG_ANSWER__BACKEND": "extractive", "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1"}


def ask(bin_: Path, cwd: Path, env: dict[str, str], question: str) -> dict:
    return json.loads(run([str(bin_ / "study"), "ask", "--json", question], cwd, env).stdout)


def test_the_wheel_imports_from_itself(installed, tmp_path):
    code = ("import rag, rag.config as c; print(rag.__file__); print(c.bundled_corpus()); "
            "print(sorted(p.name for p in c.bundled_corpus().glob('*.md')))")
    out = run([str(installed / "python"), "-c", code], tmp_path).stdout.splitlines()
    site = str(installed.parent / "lib")
    assert out[0].startswith(site) and out[1].startswith(site), out
    assert str(REPO) not in "\n".join(out[:2])
    assert "aws-certification-notes.md" in out[2], out


def test_the_wheel_indexes_a_folder_and_answers_with_citations(installed, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "botany.md").write_text(
        "# Photosynthesis\n\n- Photosynthesis in plants takes place in the chloroplasts.\n"
        "- The light reactions split water and release oxygen.\n\n# Roots\n\n"
        "- Root hairs absorb water and minerals from the soil.\n", encoding="utf-8")
    env = study_env(tmp_path / "home")
    run([str(installed / "study"), "ingest", str(notes)], tmp_path, env)
    data = ask(installed, tmp_path, env, "Where does photosynthesis take place?")
    assert not data["abstained"] and "chloroplasts" in data["answer"], data
    assert {c["passage"]["file"] for c in data["citations"]} == {"botany.md"}, data


def test_the_wheel_answers_from_its_bundled_notes(installed, tmp_path):
    env = study_env(tmp_path / "home")
    report = json.loads(run([str(installed / "study"), "ingest", "--json"], tmp_path, env).stdout)
    assert report["files"] >= 5 and str(REPO) not in report["folder"], report
    data = ask(installed, tmp_path, env, LAMBDA_Q)
    assert "15 minutes" in data["answer"] and "[1]" in data["answer"], data
    assert data["citations"] and all(c["passage"]["file"].endswith(".md")
                                     for c in data["citations"]), data
