"""``study ask``: cited answers on the command line (single, streamed, or JSONL batch)."""

from __future__ import annotations

import sys

from rag.cli import _question, emit, run_batch, settings_from


def make_tutor(args):
    from rag.chains import Tutor

    settings = settings_from(args)
    if getattr(args, "extractive", False):
        settings = settings.model_copy(update={"backend": "extractive"})
    return Tutor(settings)


def print_sources(answer) -> None:
    """Nearest topics or fallback notice, then the numbered sources."""
    if answer.abstained and answer.nearest_topics:
        print("Nearest topics in your notes: " + "; ".join(answer.nearest_topics))
    if answer.fell_back:
        print("(The generator was unavailable; this is the extractive answer.)")
    for c in answer.citations:
        print(f"  [{c.n}] {c.passage.location}")


def cmd_ask(args) -> int:
    tutor = make_tutor(args)
    if args.batch:
        run_batch(args.batch, lambda row: tutor.ask(row["question"]).to_json())
        return 0
    question = _question(args)
    if args.json:
        emit(tutor.ask(question).to_json())
        return 0
    answer = None
    for piece in tutor.stream(question):
        if isinstance(piece, str):
            sys.stdout.write(piece)
            sys.stdout.flush()
        else:
            answer = piece
    sys.stdout.write("\n")
    if answer is not None:
        print_sources(answer)
    return 0


def register(sub) -> None:
    p = sub.add_parser("ask", help="answer a question from your notes, with citations")
    p.add_argument("question", nargs="*")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.add_argument("--batch", metavar="FILE", help="JSONL of {id, question}; prints JSONL")
    p.add_argument("--extractive", action="store_true",
                   help="answer with note sentences only (no generator)")
    p.add_argument("--k", type=int, default=None, help="passages to retrieve")
    p.add_argument("--backend", choices=["auto", "extractive", "embedded", "ollama", "openai"])
    p.add_argument("--model", help="model name for ollama/openai")
    p.set_defaults(func=cmd_ask)
