"""``study ask`` / ``study chat`` / ``study models``: cited answers on the command line."""

from __future__ import annotations

import sys

from rag.cli import _question, add_source_arg, emit, run_batch, settings_from
from rag.generation.registry import backend_choices


def make_tutor(args):
    from rag.chains import Tutor

    settings = settings_from(args)
    if getattr(args, "extractive", False):
        settings = settings.updated(answer={"backend": "extractive"})
    return Tutor(settings)


def print_sources(answer) -> None:
    """Nearest topics or fallback notice, then the numbered sources."""
    if answer.abstained and answer.nearest_topics:
        print("Nearest topics in your notes: " + "; ".join(answer.nearest_topics))
    if answer.fell_back:
        print("(The generator was unavailable or its sentences failed the support check; "
              "this is the extractive answer.)")
    dropped = [s for s in answer.sentences if not s.supported]
    if dropped and not answer.fell_back:
        print(f"({len(dropped)} generated sentence(s) not supported by the notes were "
              f"{'marked' if '(unsupported)' in answer.answer else 'dropped'}.)")
    for c in answer.citations:
        print(f"  [{c.n}] {c.passage.location}")


def stream_to_terminal(pieces, out=sys.stdout):
    """Write streamed pieces as they come; if the verified answer differs, print it too."""
    answer = None
    streamed = []
    for piece in pieces:
        if isinstance(piece, str):
            streamed.append(piece)
            out.write(piece)
            out.flush()
        else:
            answer = piece
    out.write("\n")
    if answer is not None and " ".join("".join(streamed).split()) != answer.answer:
        out.write(f"Checked answer: {answer.answer}\n")
    out.flush()
    return answer


def cmd_ask(args) -> int:
    question = None if args.batch else _question(args)  # fail fast, before loading models
    tutor = make_tutor(args)
    if args.batch:
        run_batch(args.batch, lambda row: tutor.ask(row["question"]).to_json())
        return 0
    if args.json:
        emit(tutor.ask(question).to_json())
        return 0
    answer = stream_to_terminal(tutor.stream(question))
    if answer is not None:
        print_sources(answer)
    return 0


CHAT_HELP = "Ask about your notes. Commands: /sources, /reset, /quit (or Ctrl-D)."


def cmd_chat(args) -> int:
    """A terminal conversation: follow-ups are condensed with the history."""
    from rag.chains import Turn
    from rag.errors import InputError

    tutor = make_tutor(args)
    history: list[Turn] = []
    last = None
    interactive = sys.stdin.isatty()
    print(f"studyrag chat ({tutor.backend}). {CHAT_HELP}")
    while True:
        try:
            line = input("you> " if interactive else "")
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        line = line.strip()
        if not line:
            continue
        if line in ("/quit", "/exit", "/q"):
            return 0
        if line == "/reset":
            history.clear()
            last = None
            print("(conversation cleared)")
            continue
        if line == "/sources":
            if last is None or not last.citations:
                print("(no sources yet)")
            for c in last.citations if last else []:
                print(f"[{c.n}] {c.passage.location}")
                print("    " + c.passage.text[:400].replace("\n", "\n    "))
            continue
        if line.startswith("/"):
            print(CHAT_HELP)
            continue
        if not interactive:
            print(f"you> {line}")
        print("tutor> ", end="", flush=True)
        try:
            last = stream_to_terminal(tutor.stream(line, history))
        except InputError as exc:
            print(f"error: {exc}")
            continue
        except KeyboardInterrupt:
            print("\n(interrupted)")
            continue
        if last is not None:
            if last.standalone_question and last.standalone_question != line:
                print(f"(understood as: {last.standalone_question})")
            if last.fell_back:
                print("(extractive answer: the generator was unavailable or unsupported)")
            history.append(Turn(line, last.answer))


def cmd_models(args) -> int:
    """Each backend, whether it can answer now, and what ``auto`` resolves to."""
    from rag.chains import resolve_answer_backend
    from rag.generation import backend_status

    settings = settings_from(args)
    rows = backend_status(settings)
    auto = resolve_answer_backend(settings.updated(answer={"backend": "auto"}))
    if args.json:
        emit({"configured": settings.answer.backend, "auto": auto,
              "backends": [{"name": r.name, "model": r.model, "usable": r.usable,
                            "detail": r.detail} for r in rows]})
        return 0
    for r in rows:
        mark = "usable " if r.usable else "missing"
        model = f" ({r.model})" if r.model else ""
        print(f"{r.name:10s} {mark}{model} — {r.detail}")
    print(f"\nConfigured backend: {settings.answer.backend}; auto answers with: {auto}")
    return 0


def _backend_args(p) -> None:
    p.add_argument("--extractive", action="store_true",
                   help="answer with note sentences only (no generator)")
    p.add_argument("--k", type=int, default=None, help="passages to retrieve")
    p.add_argument("--backend", choices=backend_choices())
    p.add_argument("--model", help="model name for ollama/openai")
    add_source_arg(p)


def register(sub) -> None:
    p = sub.add_parser("ask", help="answer a question from your notes, with citations")
    p.add_argument("question", nargs="*")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.add_argument("--batch", metavar="FILE", help="JSONL of {id, question}; prints JSONL")
    _backend_args(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("chat", help="a conversation about your notes (streamed, with history)")
    _backend_args(p)
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("models", help="list answer backends and whether each is usable")
    p.add_argument("--backend", choices=backend_choices())
    p.add_argument("--model", help="model name for ollama/openai")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_models)
