"""Quality: the latest eval report (metrics tables and plots) and a button to run the quick eval."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import streamlit as st

from rag.config import Settings, bundled_corpus
from rag.ui import resources
from rag.ui.common import show_error

# Eval reports and the quick eval belong to a checkout (an installed wheel has neither).
REPO = Path(__file__).resolve().parents[2]
REPORTS = REPO / "evals" / "reports"
APP_LATENCY = REPORTS / "app-latency.json"


def eval_reports(folder: Path | None = None) -> list[Path]:
    """Eval reports (with retrieval metrics): newest date first (reports are named
    YYYY-MM-DD-name), then the run over most questions (a full run before a subset)."""
    folder = folder or REPORTS
    found = []
    for path in folder.glob("*.json") if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "retrieval" in data:
            items = data.get("items")
            found.append((path.stem[:10], items if isinstance(items, int) else 0,
                          path.stat().st_mtime, path))
    return [path for *_, path in sorted(found, key=lambda t: t[:3], reverse=True)]


def _num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _frame(rows: dict, columns: list[str]) -> pd.DataFrame:
    data = {name: {c: _num(m.get(c)) for c in columns if c in m} for name, m in rows.items()}
    return pd.DataFrame(data).T.dropna(axis=1, how="all")


def grouped_bars(frame: pd.DataFrame, title: str, height: int = 260) -> None:
    """Grouped bars (one group per row, one bar per column, columns in their given order)."""
    import altair as alt

    if frame.empty:
        return
    order = list(frame.columns)
    long = frame.reset_index(names="name").melt("name", var_name="metric", value_name="value")
    long = long.dropna()
    chart = alt.Chart(long).mark_bar().encode(
        x=alt.X("name:N", title=None, axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("metric:N", sort=order),
        y=alt.Y("value:Q", title=title),
        color=alt.Color("metric:N", sort=order, title=None,
                        legend=alt.Legend(orient="bottom")),
        tooltip=["name", "metric", alt.Tooltip("value:Q", format=".3f")],
    ).properties(height=height)
    st.altair_chart(chart, width="stretch")


def quick_eval_command(settings: Settings) -> list[str]:
    """The dev set is about the bundled notes: evaluate on them, in a separate home unless
    the configured notes are the bundled ones (then their index is reused)."""
    bundled = bundled_corpus()
    same = Path(settings.storage.notes_dir).resolve() == bundled.resolve()
    home = settings.home if same else settings.home / "eval"
    return [sys.executable, "-m", "rag.cli", "--home", str(home), "--notes-dir",
            str(bundled), "eval", "--quick", "--name", "app-quick"]


def run_quick_eval(settings: Settings) -> None:
    cmd = quick_eval_command(settings)
    with st.status("Running the quick eval (a few minutes)…", expanded=True) as status:
        log = st.empty()
        lines: list[str] = []
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=env)
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())
            log.code("\n".join(lines[-12:]) or "…", language=None)
        code = proc.wait()
        if code == 0:
            status.update(label="Quick eval finished", state="complete", expanded=False)
        else:
            status.update(label="Quick eval failed", state="error", expanded=True)
            st.error("The eval stopped with an error (its last lines are above). Check that "
                     "the notes index builds on the **Notes** page, then try again.",
                     icon=":material/error:")


def _report(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    st.caption(f"`{path.name}` · {data.get('items', '?')} questions · "
               f"`{data.get('command', '')}`")
    retrieval = data.get("retrieval") or {}
    if retrieval:
        st.subheader("Retrieval")
        table = _frame(retrieval, ["recall@1", "recall@5", "recall@10", "all_gold@5", "mrr",
                                   "ndcg@10", "p50_ms"])
        st.dataframe(table.style.format("{:.3f}"), width="stretch")
        recall = _frame(retrieval, ["recall@1", "recall@5", "recall@10"])
        left, right = st.columns(2)
        with left:
            st.markdown("**Recall@k per retriever**")
            grouped_bars(recall, "recall")
        with right:
            st.markdown("**Retrieval latency p50 (ms)**")
            lat = _frame(retrieval, ["p50_ms"])
            if not lat.empty:
                st.bar_chart(lat, height=260, horizontal=True)
    answers = data.get("answers") or {}
    if answers:
        st.subheader("Answers")
        cols = ["must_correct", "abstention", "false_abstention", "faithfulness",
                "citation_recall", "citation_precision", "latency_p50_ms", "latency_p95_ms",
                "ttft_p50_ms", "tokens_per_s", "median_words"]
        table = _frame(answers, cols)
        st.dataframe(table.style.format("{:.3f}"), width="stretch")
        left, right = st.columns(2)
        with left:
            st.markdown("**Faithfulness and correctness**")
            quality = _frame(answers, ["faithfulness", "citation_precision", "must_correct"])
            if "faithfulness" not in quality:
                st.caption("Faithfulness was not measured in this report.")
            grouped_bars(quality, "share")
        with right:
            st.markdown("**Answer latency (ms)**")
            lat = _frame(answers, ["ttft_p50_ms", "latency_p50_ms", "latency_p95_ms"])
            grouped_bars(lat, "ms")
    study = data.get("study") or {}
    flat = {k: v for k, v in study.items() if not isinstance(v, (dict, list))}
    if flat:
        st.subheader("Study features")
        st.dataframe(pd.DataFrame({"value": flat}), width="stretch")
    md = path.with_suffix(".md")
    if md.is_file():
        with st.expander("Full report (Markdown)"):
            st.markdown(md.read_text(encoding="utf-8"))


def _app_latency() -> None:
    path = REPORTS / APP_LATENCY.name
    if not path.is_file():
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return
    st.subheader("App latency (browser test)")
    c1, c2, c3 = st.columns(3)
    if data.get("first_load_warm_s") is not None:
        c1.metric("First page load (warm)", f"{data['first_load_warm_s']:.2f} s")
    if data.get("ttft_s") is not None:
        c2.metric("Answer starts streaming", f"{data['ttft_s']:.2f} s")
    if data.get("answer_complete_s") is not None:
        c3.metric("Answer complete", f"{data['answer_complete_s']:.2f} s")
    st.caption(data.get("note", ""))


def page() -> None:
    settings = resources.session_settings()
    st.title("Quality")
    st.caption("How well retrieval and answers do on the hand-written dev set "
               "(`study eval`): recall@k per retriever, faithfulness and latency.")
    if not REPORTS.is_dir():
        st.info("Eval reports and the quick eval need a studyrag checkout (evals/reports); "
                "this installation has none.", icon=":material/info:")
        return
    if st.button("Run quick eval", icon=":material/play_arrow:", key="run_eval"):
        try:
            run_quick_eval(settings)
        except Exception as exc:
            show_error(exc)
    reports = eval_reports()
    if not reports:
        st.info("No eval report yet: click **Run quick eval** or run `study eval --quick`.",
                icon=":material/info:")
    else:
        pick = st.selectbox("Report", reports, format_func=lambda p: p.stem, key="q_report")
        try:
            _report(pick)
        except Exception as exc:
            show_error(exc)
    _app_latency()
