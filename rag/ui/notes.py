"""Notes: what is indexed, add a folder or upload files, re-index with a progress bar."""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from pathlib import Path

import streamlit as st

from rag.config import Settings
from rag.errors import InputError
from rag.ui import resources
from rag.ui.common import allowed_folder, friendly_errors, show_error

UPLOAD_TYPES = ["md", "markdown", "txt", "pdf", "docx", "pptx", "html", "htm"]
_SAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def ingest_with_progress(settings: Settings, folder: Path, label: str, rebuild: bool = False):
    """Run ``NoteIndex.ingest`` with a progress bar; returns the IngestReport."""
    index = resources.get_index(settings)
    bar = st.progress(0.0, text=f"{label}…")

    def progress(i: int, total: int, name: str) -> None:
        bar.progress(min(i / max(total, 1), 1.0), text=f"{label}: {i}/{total} · {name}")

    with resources.index_lock(settings):
        report = index.ingest(folder, progress=progress, rebuild=rebuild)
    bar.empty()
    return report


def show_report(report, removed_uploads: list[str] | None = None) -> None:
    st.success(f"Indexed `{report.folder}`: {report.summary()}", icon=":material/check_circle:")
    if report.skipped:
        lines = "\n".join(f"- `{s.file}` — {s.reason}" for s in report.skipped)
        extra = ("  \nSkipped uploads were not kept." if removed_uploads else "")
        st.warning(f"**{len(report.skipped)} file(s) skipped:**\n{lines}{extra}", icon=":material/warning:")


def save_uploads(settings: Settings, files) -> list[Path]:
    """Write uploads into the data folder only: the browser picks the name, so it is reduced
    to a plain visible file name, and a symlink already there is replaced, not followed."""
    folder = resources.uploads_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for f in files:
        name = _SAFE.sub("_", Path(f.name).name).strip().lstrip(".") or "upload.md"
        path = folder / name
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-")
        with os.fdopen(fd, "wb") as out:
            out.write(f.getvalue())
        os.replace(tmp, path)
        saved.append(path)
    return saved


def _when(ts) -> str:
    if not ts:
        return "unknown"
    return dt.datetime.fromtimestamp(float(ts)).strftime("%Y-%m-%d %H:%M")


def _overview(settings: Settings) -> None:
    index = resources.get_index(settings)
    if not index.exists():
        st.info("Nothing is indexed yet. Add a folder below or re-index your notes.", icon=":material/inbox:")
        return
    status = index.status()
    folders = index.folders()
    c1, c2, c3 = st.columns(3)
    c1.metric("Files", sum(len(f) for f in folders.values()))
    c2.metric("Chunks", status["chunks"])
    c3.metric("Last indexed", _when(status.get("indexed_at")))
    if status.get("server"):
        st.caption(f"Chroma server: {status['server']}")
    for folder, files in sorted(folders.items()):
        with st.expander(f":material/folder: {folder} — {len(files)} files, {sum(files.values())} chunks",
                         expanded=len(folders) == 1):
            st.dataframe(
                [{"file": f, "chunks": n} for f, n in sorted(files.items())],
                hide_index=True, width="stretch",
            )
            if Path(folder) != Path(settings.storage.notes_dir).resolve():
                if st.button("Remove from index", key=f"rm_{folder}"):
                    with resources.index_lock(settings):
                        n = index.remove_folder(Path(folder))
                    st.toast(f"Removed {n} chunks of {folder}")
                    st.rerun()


def page() -> None:
    settings = resources.session_settings()
    st.title("Your notes")
    with friendly_errors():
        _overview(settings)

    st.subheader("Upload notes")
    with st.form("upload_form", clear_on_submit=True):
        files = st.file_uploader("Notes, slides or documents", type=UPLOAD_TYPES,
                                 accept_multiple_files=True, key="upload_files")
        submitted = st.form_submit_button("Upload and index", type="primary")
    if submitted:
        if not files:
            st.warning("Choose one or more files first.", icon=":material/warning:")
        else:
            try:
                save_uploads(settings, files)
                folder = resources.uploads_dir(settings)
                report = ingest_with_progress(settings, folder, "Indexing uploads")
                removed = []
                for s in report.skipped:  # a bad upload would be skipped on every re-index
                    bad = folder / s.file
                    if bad.is_file():
                        bad.unlink()
                        removed.append(s.file)
                show_report(report, removed)
            except Exception as exc:
                show_error(exc)

    st.subheader("Add a folder")
    roots = ", ".join(f"`{r}`" for r in settings.storage.folder_roots)
    with st.form("folder_form"):
        path = st.text_input("Folder of .md/.txt notes on this machine",
                             placeholder="~/notes/aws", key="folder_path",
                             help=f"Only folders under {roots} (setting allowed_roots).")
        add = st.form_submit_button("Add and index")
    if add:
        if not path.strip():
            st.warning("Type the path of a folder first.", icon=":material/warning:")
        else:
            try:
                report = ingest_with_progress(settings, allowed_folder(settings, path.strip()),
                                              "Indexing folder")
                show_report(report)
            except Exception as exc:
                show_error(exc)

    st.subheader("Re-index")
    st.caption(f"Configured notes folder: `{settings.storage.notes_dir}`. Re-indexing is "
               "incremental: only changed files are embedded again.")
    col1, col2 = st.columns(2)
    if col1.button("Re-index notes", icon=":material/sync:", key="reindex", width="stretch"):
        reindex_all(settings, rebuild=False)
    if col2.button("Rebuild from scratch", icon=":material/restart_alt:", key="rebuild", width="stretch",
                   help="Drop the index and embed everything again (slow)."):
        reindex_all(settings, rebuild=True)


def reindex_all(settings: Settings, rebuild: bool) -> None:
    """The configured notes, then every other indexed folder (uploads included)."""
    try:
        index = resources.get_index(settings)
        others = [Path(f) for f in (index.folders() if index.exists() else {})
                  if Path(f) != Path(settings.storage.notes_dir).resolve()]
        up = resources.uploads_dir(settings)
        if up.is_dir() and up.resolve() not in others and any(up.iterdir()):
            others.append(up.resolve())
        show_report(ingest_with_progress(settings, settings.storage.notes_dir,
                                         "Rebuilding" if rebuild else "Re-indexing",
                                         rebuild=rebuild))
        for folder in others:
            if folder != up.resolve():
                try:  # a shared index also lists other machines' folders
                    folder = allowed_folder(settings, folder)
                except InputError as exc:
                    st.warning(f"Not re-indexed: {exc}", icon=":material/block:")
                    continue
            if folder.is_dir():
                show_report(ingest_with_progress(settings, folder, f"Re-indexing {folder.name}"))
            else:
                st.warning(f"`{folder}` no longer exists; remove it from the index above.",
                           icon=":material/warning:")
    except Exception as exc:
        show_error(exc)
