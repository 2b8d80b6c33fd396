"""``study``: the command-line front-end. Thin: parse, call ``rag``, print.

Feature modules add their own sub-commands through ``register(subparsers)`` functions listed
in ``COMMANDS``; the measuring commands (``EVAL_COMMANDS``) are filled in by the checkout's
``evals`` package. Every ``StudyragError`` becomes one ``error:`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from rag.errors import ConfigError, InputError, StudyragError
from rag.jsonl import read_jsonl

# Feature modules that register extra sub-commands (missing ones are simply skipped).
COMMANDS = ["rag.cli_answer", "rag.cli_study"]

# Measuring quality and speed is not library code: these are named here, and their options
# and bodies come from ``evals.cli``, imported only when one of them is asked for.
EVAL_COMMANDS = {
    "eval": "measure retrieval and answer quality on a dev set",
    "eval-verifier": "precision/recall of the support verifier on labelled pairs",
    "bench": "time indexing, retrieval and answering",
}


def quiet_libraries() -> None:
    """Model loaders print progress bars and warnings that mean nothing to a student.
    (transformers reads these variables when it is imported, so nothing heavy loads here.)"""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    for name in ("chromadb", "httpx", "sentence_transformers", "transformers", "urllib3",
                 "optimum", "onnxruntime", "bm25s"):
        logging.getLogger(name).setLevel(logging.ERROR)


# Command-line options that override a setting (option -> dotted setting name).
OPTION_SETTINGS = {
    "home": "home", "notes_dir": "storage.notes_dir", "chroma_host": "storage.chroma_host",
    "chroma_port": "storage.chroma_port", "source": "storage.sources", "k": "retrieval.k",
    "backend": "answer.backend", "model": "answer.model",
}


def settings_from(args: argparse.Namespace):
    from rag.config import load_settings, nest

    return load_settings(**nest({name: getattr(args, option, None)
                                 for option, name in OPTION_SETTINGS.items()}))


def add_source_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", action="append", metavar="FILE",
                   help="use only this file or folder of your notes (relative to the notes "
                        "folder; repeatable)")


def read_batch(path: str) -> list[dict]:
    """JSONL of {"id", ...}; a bad line is an error that names the line."""
    return [row for _, row in read_jsonl(path, "Batch file")]


def emit(obj: dict) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def run_batch(path: str, handle: Callable[[dict], dict], key: str = "question") -> None:
    """Answer every line; a bad line yields an object with "error" instead of stopping."""
    for row in read_batch(path):
        try:
            if key and not isinstance(row.get(key), str):
                raise InputError(f'missing "{key}"')
            out = handle(row)
        except StudyragError as exc:
            out = {"error": str(exc)}
        emit({"id": row.get("id"), **out})


def progress_bar(label: str) -> Callable[[int, int, str], None]:
    """A small tqdm bar on stderr (silent when stderr is not a terminal and CI is set)."""
    from tqdm import tqdm

    bar = None

    def update(i: int, total: int, name: str) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=label, unit="file", file=sys.stderr,
                       disable=None, leave=False)
        bar.set_postfix_str(name[-40:], refresh=False)
        bar.update(1)
        if i == total:
            bar.close()

    return update


# --- core commands ---------------------------------------------------------------------
def cmd_ingest(args) -> int:
    from rag.index import NoteIndex

    settings = settings_from(args)
    index = NoteIndex(settings)
    if args.remove:
        removed = index.remove_folder(Path(args.remove))
        print(f"Removed {removed} chunks of {args.remove}.")
        return 0
    folder = Path(args.path) if args.path else settings.storage.notes_dir
    report = index.ingest(folder, progress=None if args.json else progress_bar("Indexing"),
                          rebuild=args.rebuild)
    if args.json:
        emit({"folder": report.folder, "files": report.files, "chunks": report.chunks,
              "added": report.added_files, "changed": report.updated_files,
              "unchanged": report.unchanged_files, "removed": report.removed_files,
              "skipped": [{"file": s.file, "reason": s.reason} for s in report.skipped],
              "seconds": round(report.seconds, 3)})
        return 0
    for skipped in report.skipped:
        print(f"warning: {skipped}", file=sys.stderr)
    print(f"Indexed {report.folder}: {report.summary()}")
    return 0


def cmd_retrieve(args) -> int:
    from rag.retrieval import HybridSearch

    search = HybridSearch(settings_from(args))

    def one(question: str) -> dict:
        passages = search.retrieve(question, k=args.k, mode=args.mode)
        return {"question": question, "passages": [p.model_dump() for p in passages]}

    if args.batch:
        run_batch(args.batch, lambda row: one(row["question"]))
        return 0
    result = one(_question(args))
    if args.json:
        emit(result)
    else:
        for i, p in enumerate(result["passages"], start=1):
            print(f"[{i}] {p['file']} › {p['heading']} (lines {p['start_line']}–"
                  f"{p['end_line']}), score {p['score']:.4f}")
            print("    " + p["text"][:300].replace("\n", "\n    "))
    return 0


def _question(args) -> str:
    question = " ".join(args.question or []).strip()
    if not question:
        raise InputError("The question is empty: study ask \"What is S3 Glacier?\"")
    return question


def _command_in(argv: list[str], parser: argparse.ArgumentParser) -> str | None:
    """The sub-command named in ``argv`` (skipping the global options and their values)."""
    takes_value = {opt for action in parser._actions if action.nargs != 0
                   for opt in action.option_strings}
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token == "--":
            return None
        elif token.startswith("-"):
            skip = token in takes_value
        else:
            return token
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The full parser; given ``argv``, feature modules are imported only until the one that
    registers the requested sub-command (``study ask`` does not import the eval harness)."""
    parser = argparse.ArgumentParser(
        prog="study", description="A cited, offline study partner over your notes.")
    parser.add_argument("--home", type=Path, help="data folder (STUDYRAG_HOME)")
    parser.add_argument("--notes-dir", type=Path, help="notes folder (STUDYRAG_STORAGE__NOTES_DIR)")
    parser.add_argument("--chroma-host", help="use a Chroma server (STUDYRAG_STORAGE__CHROMA_HOST)")
    parser.add_argument("--chroma-port", type=int, help="Chroma server port")
    parser.add_argument("-v", "--verbose", action="store_true", help="show library logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("ingest", help="index a notes folder (incremental)")
    p.add_argument("path", nargs="?", help="notes folder (default: the configured notes_dir)")
    p.add_argument("--rebuild", action="store_true", help="build the index anew (aside, then swapped in)")
    p.add_argument("--remove", metavar="PATH", help="remove a folder's notes from the index")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("retrieve", help="show the passages retrieved for a question")
    p.add_argument("question", nargs="*")
    p.add_argument("--k", type=int, default=None, help="passages to return (default 5)")
    p.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--batch", metavar="FILE", help="JSONL of {id, question}; prints JSONL")
    add_source_arg(p)
    p.set_defaults(func=cmd_retrieve)

    wanted = _command_in(argv, parser) if argv is not None else None
    for name in COMMANDS:
        if wanted is not None and wanted in sub.choices:
            break
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    add_eval_commands(sub, wanted)
    return parser


def add_eval_commands(sub, wanted: str | None) -> None:
    """The measuring commands, filled in by ``evals.cli`` unless another command was asked
    for. Without the ``evals`` package (a wheel installed outside the checkout) asking for one
    of them is a ``ConfigError``, not a traceback."""
    parsers = {name: sub.add_parser(name, help=text) for name, text in EVAL_COMMANDS.items()}
    if wanted is not None and wanted not in parsers:
        return
    try:
        from evals.cli import register
    except ModuleNotFoundError as exc:
        if exc.name not in ("evals", "evals.cli"):
            raise
        if wanted is None:
            return
        raise ConfigError(f"study {wanted} needs the evals package of a studyrag source "
                          "checkout (pip install -e . there); it is not installed.") from None
    register(parsers)


def main(argv: Iterable[str] | None = None) -> int:
    argv = list(argv) if argv is not None else sys.argv[1:]
    try:
        parser = build_parser(argv)
    except StudyragError as exc:
        return _failed(exc)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    if not args.verbose:
        quiet_libraries()
    started = time.perf_counter()
    try:
        return int(args.func(args) or 0)
    except StudyragError as exc:
        return _failed(exc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: still one line for the user, the traceback with -v
        if args.verbose:
            raise
        print(f"error: unexpected {type(exc).__name__}: {str(exc)[:300]} "
              "(run with -v for details, and please report it)", file=sys.stderr)
        return 1
    finally:
        logging.getLogger(__name__).debug("%.1f s", time.perf_counter() - started)


def _failed(exc: StudyragError) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
