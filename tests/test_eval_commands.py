"""`study eval`, `eval-verifier` and `bench` are thin: named by ``rag.cli``, filled in by the
``evals`` package, and one clear line where that package is not installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Runs the CLI in a process where no module of the ``evals`` package can be imported.
WITHOUT_EVALS = """
import sys

class NoEvals:
    def find_spec(self, name, path=None, target=None):
        if name == "evals" or name.startswith("evals."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoEvals())
from rag.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _study_without_evals(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_EVALS, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", [["eval", "--quick", "--every", "4"], ["bench", "--help"],
                                  ["--home", "/tmp/x", "eval-verifier"]])
def test_without_the_evals_package_one_clear_line(args):
    proc = _study_without_evals(*args)
    command = next(a for a in args if a in ("eval", "bench", "eval-verifier"))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        f"error: study {command} needs the evals package of a studyrag source checkout "
        "(pip install -e . there); it is not installed."]


def test_without_the_evals_package_other_commands_and_help_work():
    proc = _study_without_evals("--help")
    assert proc.returncode == 0 and "eval-verifier" in proc.stdout, proc.stderr[-2000:]
    assert _study_without_evals("ingest", "--help").returncode == 0


def test_eval_commands_take_their_options_from_evals():
    from rag.cli import build_parser

    args = build_parser(["eval", "--quick"]).parse_args(["eval", "--quick", "--every", "3"])
    assert args.quick and args.every == 3 and args.func.__module__ == "evals.cli"
    args = build_parser(["bench"]).parse_args(["bench", "--runs", "1"])
    assert args.func.__module__ == "evals.bench"
