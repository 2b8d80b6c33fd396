"""Measuring studyrag, kept outside the library (``rag`` never imports this package).

``study eval``, ``study eval-verifier`` and ``study bench`` are thin commands of ``rag.cli``
whose options and bodies are here (``evals.cli``); the datasets they read and the reports
they write sit next to this file, so they are found in a source checkout only.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATASETS = HERE / "datasets"
REPORTS = HERE / "reports"
JUDGING = HERE / "judging"
