"""``study explain | quiz | progress | export | guide | topics``: the study features on the
command line."""

from __future__ import annotations

import json
from pathlib import Path

from rag.cli import add_source_arg, emit, read_batch, settings_from
from rag.errors import InputError, StudyragError


def _tutor(args):
    from rag.chains import Tutor

    return Tutor(settings_from(args))


def _options(raw: str | None) -> dict[str, str] | None:
    """--options as JSON ({"A": "..."}) or as "A. ... | B. ..." text."""
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        from rag.explain import parse_options

        _, value = parse_options(raw.replace(" | ", "\n"))
    if not isinstance(value, dict) or len(value) < 2:
        raise InputError('--options needs two or more options: \'{"A": "...", "B": "..."}\'.')
    return {str(k).upper(): str(v) for k, v in value.items()}


def cmd_explain(args) -> int:
    from rag.explain import Explainer

    explainer = Explainer(_tutor(args))

    def one(question, chosen, correct, options) -> dict:
        e = explainer.explain(question, chosen, correct, options)
        return {"explanation": e.explanation, "correct": e.correct,
                "citations": [c.model_dump(mode="json") for c in e.citations],
                "abstained": e.abstained, "settled": e.settled, "confidence": e.confidence,
                "chosen": e.chosen, "sections": e.sections.model_dump()}

    if args.batch:
        for row in read_batch(args.batch):
            try:
                if not isinstance(row.get("question"), str) or not row.get("chosen"):
                    raise InputError('each line needs "question" and "chosen"')
                options = row.get("options") if isinstance(row.get("options"), dict) else None
                out = one(row["question"], row["chosen"], row.get("correct"), options)
            except StudyragError as exc:
                out = {"error": str(exc)}
            emit({"id": row.get("id"), **out})
        return 0
    if not args.question or not args.chosen:
        raise InputError('Give --question "..." (with options A-E) and --chosen LETTER.')
    e = explainer.explain(args.question, args.chosen, args.correct, _options(args.options))
    if args.json:
        emit(e.to_json())
        return 0
    print(e.explanation)
    if e.citations:
        print("\nSources:")
        for c in e.citations:
            print(f"  [{c.n}] {c.passage.location}")
    return 0


def _progress(args):
    from rag.progress import Progress

    return Progress.for_settings(settings_from(args))


def _ask(prompt: str) -> str | None:
    """One line from stdin; None on EOF."""
    try:
        return input(prompt)
    except EOFError:
        return None


QUIT = ("q", "quit", "exit")


def _due_questions(progress, topic: str | None, sources: list[str] | None = None) -> list:
    """Questions whose FSRS review is due today, on the topic and from the sources (a card
    saved by another version: skipped)."""
    from pydantic import ValidationError

    from rag.quiz import Question
    from rag.sources import from_sources

    out = []
    for card in progress.due(limit=500):
        if card.question_json and (not topic or topic.lower() in card.topic.lower()):
            try:
                question = Question.model_validate_json(card.question_json)
            except ValidationError:
                continue
            if from_sources(question.passage.file, sources):
                out.append(question)
    return out


def _self_rating() -> tuple[str, bool]:
    """The student's own rating of a right answer, and whether they quit (EOF: Good, saved)."""
    from rag.progress import parse_rating

    while True:
        reply = _ask("   How was it? Enter = good, h = hard, e = easy, a = again (a guess): ")
        if reply is None or reply.strip().lower() in QUIT:
            return "good", True
        try:
            return parse_rating(reply.strip() or "good").name.lower(), False
        except InputError:
            print("   Please press Enter or type h, e or a.")


def cmd_quiz(args) -> int:
    from rag.progress import when
    from rag.quiz import QuizMaker, grade

    if args.n < 1 or args.n > 50:
        raise InputError("--n must be between 1 and 50.")
    if args.review and args.new_only:
        raise InputError("--review asks only due questions; --new-only skips them: pick one.")
    progress = _progress(args) if args.review or not args.json else None
    all_due = [] if progress is None or args.new_only else _due_questions(
        progress, args.topic, args.source)
    due = all_due[: args.n]
    if args.review:
        if args.json:
            emit({"topic": args.topic, "due": len(all_due),
                  "questions": [q.to_json() for q in due]})
            return 0
        if not due:
            upcoming = progress.next_due()
            print("Nothing is due for review today" + (
                f"; the next review is {when(upcoming)}." if upcoming else
                ": answer some questions first (study quiz)."))
            return 0
        questions = due
    else:
        maker = QuizMaker(_tutor(args), progress=progress, seed=args.seed)
        fresh = maker.make(args.topic, max(args.n - len(due), 1)) if len(due) < args.n else []
        questions = (due + [q for q in fresh if q.id not in {d.id for d in due}])[: args.n]
        if args.json:
            emit({"topic": args.topic, "questions": [q.to_json() for q in questions],
                  "validity_rate": round(maker.stats.validity_rate, 4),
                  "candidates": maker.stats.candidates, "rejected": maker.stats.rejected})
            return 0
    right = 0
    print(f"{len(questions)} questions{' on ' + args.topic if args.topic else ''} "
          f"({len(due)} of {len(all_due)} due for review today). Answer with a letter; "
          "q quits.\n")
    try:
        for number, q in enumerate(questions, start=1):
            print(f"Q{number}. {q.stem}")
            letters = "ABCD"[:len(q.options)]
            for letter, option in zip(letters, q.options):
                print(f"   {letter}) {option}")
            while True:
                reply = _ask("Your answer: ")
                if reply is None or reply.strip().lower() in QUIT:
                    raise EOFError
                reply = reply.strip().upper()[:1]
                if reply and reply in letters:
                    break
                print(f"   Please type {', '.join(letters[:-1])} or {letters[-1]} (q quits).")
            chosen = letters.index(reply)
            ok, feedback = grade(q, chosen)
            right += ok
            print(f"   {feedback}")
            rating, stop = _self_rating() if ok else ("again", False)
            card = progress.record(q.id, q.topic, chosen, q.answer_index,
                                   question_json=q.model_dump_json(), rating=rating)
            print(f"   Next review {when(card.due_at)}.\n")
            if stop:
                raise EOFError
    except (EOFError, KeyboardInterrupt):
        print("\nQuiz stopped; your answers so far are saved.")
    print(f"Score: {right}/{len(questions)}")
    return 0


def cmd_progress(args) -> int:
    progress = _progress(args)
    if args.json:
        emit(progress.to_json())
        return 0
    scores = progress.scores()
    if not scores:
        print("No quiz answers yet: try `study quiz --topic S3 --n 5`.")
        return 0
    width = max(len(s.topic) for s in scores)
    print(f"{'topic':<{width}}  answered  correct  accuracy  due today")
    for s in scores:
        print(f"{s.topic:<{width}}  {s.attempts:>8}  {s.correct:>7}  {s.accuracy:>8.0%}  "
              f"{s.due:>9}")
    due = sum(s.due for s in scores)
    if due:
        print(f"\n{due} due for review today: study quiz --review")
    elif (upcoming := progress.next_due()) is not None:
        from rag.progress import when

        print(f"\nNothing due today; the next review is {when(upcoming)}.")
    return 0


def cmd_export(args) -> int:
    """Practised questions (plus --new ones from the notes) as an Anki package or CSV. New
    questions use a fixed seed unless --seed is given, so re-exports keep their option order."""
    from rag import export

    suffix = ".apkg" if args.format == "anki" else ".csv"
    out = export.target(Path(args.out), suffix)
    if not 0 <= args.new <= 200:
        raise InputError("--new must be between 0 and 200.")
    from rag.sources import from_sources

    progress = _progress(args)
    questions = [q for q in export.questions_from_progress(progress, args.topic)
                 if from_sources(q.passage.file, args.source)]
    if args.new:
        from rag.quiz import QuizMaker

        maker = QuizMaker(_tutor(args), progress=progress,
                          seed=0 if args.seed is None else args.seed)
        known = {q.id for q in questions}
        questions += [q for q in maker.make(args.topic, args.new) if q.id not in known]
    if args.format == "anki":
        deck = "studyrag" + (f"::{args.topic}" if args.topic else "")
        export.write(out, export.anki_bytes(questions, deck))
        how = (f"deck {deck!r}; in Anki: File > Import (a later export of the same questions "
               "updates these notes)")
    else:
        export.write(out, export.csv_text(questions))
        how = ", ".join(export.CSV_COLUMNS)
    print(f"Wrote {len(questions)} questions to {out} ({how}).")
    return 0


def cmd_guide(args) -> int:
    """The study guide as Markdown (redirect it to a file to keep it) or JSON."""
    from rag.guide import GuideMaker
    from rag.retrieval import HybridSearch

    topic = " ".join(args.topic or []).strip()
    if not topic:
        raise InputError('Give a topic: study guide "S3 storage classes".')
    guide = GuideMaker(HybridSearch(settings_from(args))).build(topic)
    if args.json:
        emit(guide.to_json())
    else:
        print(guide.to_markdown(), end="")
    return 0


def cmd_topics(args) -> int:
    from rag.index import NoteIndex
    from rag.quiz import list_topics

    topics = list_topics(NoteIndex(settings_from(args)))
    if args.json:
        emit({"topics": [t.model_dump() for t in topics]})
        return 0
    for t in topics:
        print(f"{t.name}  ({t.chunks} passages; {', '.join(t.files)})")
    return 0


def register(sub) -> None:
    p = sub.add_parser("explain", help="explain why an exam answer was wrong, from your notes")
    p.add_argument("--question", help="the exam question, options A-E on their own lines")
    p.add_argument("--options", help='options as JSON {"A": ...} if not in the question')
    p.add_argument("--chosen", help="the option you chose (letter)")
    p.add_argument("--correct", help="the correct option, if you know it")
    p.add_argument("--batch", metavar="FILE", help="JSONL of {id, question, chosen, correct?}")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("quiz", help="practice multiple-choice questions from your notes")
    p.add_argument("--topic", help="a heading of your notes (see `study topics`)")
    p.add_argument("--n", type=int, default=5, help="number of questions (default 5)")
    p.add_argument("--json", action="store_true", help="print the questions as JSON instead")
    p.add_argument("--seed", type=int, default=None, help="random seed (repeatable quizzes)")
    p.add_argument("--new-only", action="store_true", help="skip questions due for review")
    p.add_argument("--review", action="store_true",
                   help="only the questions due for review today (FSRS schedule)")
    add_source_arg(p)
    p.set_defaults(func=cmd_quiz)

    p = sub.add_parser("progress", help="quiz scores per topic and reviews due")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_progress)

    p = sub.add_parser("export", help="practice questions to Anki (.apkg) or CSV")
    p.add_argument("format", choices=["anki", "csv"], help="anki (.apkg package) or csv")
    p.add_argument("--out", required=True, metavar="FILE", help="FILE.apkg or FILE.csv")
    p.add_argument("--topic", help="only questions whose topic contains this")
    p.add_argument("--new", type=int, default=0, metavar="N",
                   help="also write N new questions from your notes (default 0: only the "
                        "ones you practised)")
    p.add_argument("--seed", type=int, default=None, help="random seed for --new questions")
    add_source_arg(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("guide", help="a study guide of your notes on a topic (Markdown)")
    p.add_argument("topic", nargs="*", help="the topic, e.g. \"S3 storage classes\"")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_source_arg(p)
    p.set_defaults(func=cmd_guide)

    p = sub.add_parser("topics", help="list the topics (headings) of your notes")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_topics)

