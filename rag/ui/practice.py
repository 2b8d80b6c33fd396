"""Practice: multiple-choice questions from your notes, one at a time, graded with the cited
passage; progress per topic; every question comes back on its FSRS review schedule."""

from __future__ import annotations

import html
import re

import streamlit as st

from rag.config import Settings
from rag.ui import resources
from rag.ui.common import md_escape, show_error, show_passage

LETTERS = "ABCD"
WEAK = "My weak topics"
# The student's own rating of a right answer (FSRS: a right answer is Good unless they say so).
SELF_RATINGS = {"I guessed": "again", "Hard": "hard", "Good": "good", "Easy": "easy"}


# --- the rag.quiz / rag.progress calls (the only place that knows their API) ----------------
def _store(settings: Settings):
    return resources.get_progress(settings)


def _maker(settings: Settings):
    """One QuizMaker per browser session: it remembers the questions already asked."""
    key = resources.settings_key(settings)
    if st.session_state.get("_pr_maker_key") != key:
        from rag.quiz import QuizMaker

        st.session_state["_pr_maker"] = QuizMaker(resources.get_tutor(settings),
                                                  progress=_store(settings))
        st.session_state["_pr_maker_key"] = key
    return st.session_state["_pr_maker"]


def topics(settings: Settings) -> list[str]:
    from rag.quiz import list_topics

    # The tutor's index: only the sources chosen in the sidebar.
    return [t.name for t in list_topics(resources.get_tutor(settings).search.index)]


def make_questions(settings: Settings, topic_names: list[str | None], n: int) -> list:
    """n questions spread over the topics (None = across the notes, weak topics first)."""
    from rag.quiz import QuizError

    maker = _maker(settings)
    questions: list = []
    per = max(1, -(-n // max(len(topic_names), 1)))
    failures = []
    for name in topic_names:
        try:
            questions.extend(maker.make(name, min(per, n - len(questions))))
        except QuizError as exc:
            failures.append(exc)
        if len(questions) >= n:
            break
    if not questions and failures:
        raise failures[0]
    return questions[:n]


def record(settings: Settings, question, chosen: int):
    """Save the answer at once (a right one as Good; ``rate`` may change that after)."""
    return _store(settings).record(question.id, question.topic, chosen, question.answer_index,
                                   question_json=question.model_dump_json())


def rate(settings: Settings, question, rating: str):
    return _store(settings).rate(question.id, rating)


def practised(settings: Settings) -> list:
    """Every question the student has answered (what the downloads export)."""
    from rag.export import questions_from_progress

    return questions_from_progress(_store(settings))


def topic_scores(settings: Settings) -> list[dict]:
    return [{"topic": s.topic, "accuracy": round(s.accuracy, 3), "attempts": s.attempts,
             "correct": s.correct, "due today": s.due} for s in _store(settings).scores()]


def weak_topics(settings: Settings) -> list[str]:
    return list(_store(settings).weak_topics())


def _cards_to_questions(cards) -> list:
    from rag.quiz import Question

    out = []
    for card in cards:
        try:
            out.append(Question.model_validate_json(card.question_json))
        except Exception:  # a card saved by another version: skip it
            continue
    return out


def due_questions(settings: Settings) -> list:
    """Questions whose FSRS review is due today (the likeliest forgotten first)."""
    return _cards_to_questions(_store(settings).due())


def next_review(settings: Settings) -> str | None:
    from rag.progress import when

    upcoming = _store(settings).next_due()
    return None if upcoming is None else when(upcoming)


def missed_questions(settings: Settings) -> list[dict]:
    """Missed questions as Explain-page prefills: this session's first, then due cards."""
    out = list(st.session_state.get("pr_missed", []))
    seen = {m["question"] for m in out}
    for q in _cards_to_questions(c for c in _store(settings).due() if c.missed):
        if q.stem not in seen:
            seen.add(q.stem)
            out.append({"question": q.stem, "options": dict(zip(LETTERS, q.options)),
                        "chosen": None, "correct": LETTERS[q.answer_index]})
    return out


# --- page -----------------------------------------------------------------------------------
def _round() -> dict | None:
    return st.session_state.get("pr_round")


def _start(questions: list, label: str, asked: int | None = None) -> None:
    st.session_state["pr_round"] = {"questions": questions, "i": 0, "score": 0,
                                    "answered": 0, "label": label, "submitted": None,
                                    "asked": asked or len(questions)}


def _setup(settings: Settings) -> None:
    request = st.session_state.pop("practice_request", None)
    if request:
        st.session_state["pr_custom"] = request.get("topic", "")
        st.info(f"Ready to quiz you on **{md_escape(request.get('topic', ''))}** — pick how "
                "many questions and start.", icon=":material/quiz:")
    try:
        names = topics(settings)
    except Exception as exc:
        show_error(exc)
        names = []
    due, upcoming = [], None
    try:
        due = due_questions(settings)
        upcoming = None if due else next_review(settings)
    except Exception as exc:  # no progress store yet: practice still works
        st.caption(f"(Progress tracking unavailable: {exc})")
    if due:
        per_topic: dict[str, int] = {}
        for q in due:
            per_topic[q.topic] = per_topic.get(q.topic, 0) + 1
        counts = " · ".join(f"{md_escape(t)} {n}" for t, n in
                            sorted(per_topic.items(), key=lambda kv: -kv[1]))
        c1, c2 = st.columns([3, 1])
        c1.info(f"**{len(due)} question{'s' * (len(due) != 1)} due today** (FSRS schedule): "
                f"{counts}", icon=":material/event_repeat:")
        if c2.button("Review them", icon=":material/replay:", key="pr_review", width="stretch"):
            _start(due, "Review")
            st.rerun()
    elif upcoming:
        st.caption(f"Nothing due for review today; the next review is {upcoming}.")
    with st.form("pr_setup"):
        chosen = st.multiselect("Topics", [WEAK, *names], key="pr_topics",
                                placeholder="Choose topics, or leave empty for a mix")
        custom = st.text_input("…or type a topic", key="pr_custom",
                               placeholder="e.g. S3 storage classes")
        n = st.slider("Number of questions", 1, 10, 5, key="pr_n")
        go = st.form_submit_button("Start practice", type="primary", icon=":material/play_arrow:")
    if go:
        wanted: list[str | None] = [t for t in chosen if t != WEAK]
        if custom.strip():
            wanted.insert(0, custom.strip())
        if WEAK in chosen:
            try:
                weak = weak_topics(settings)
            except Exception as exc:
                show_error(exc)
                weak = []
            if not weak:
                st.info("No weak topics yet — answer some questions first. Here is a mix.",
                        icon=":material/info:")
            wanted += [t for t in weak if t not in wanted] or [None]
        if not wanted:
            wanted = [None]  # a mix across the notes (weak topics first)
        try:
            with st.spinner("Writing questions from your notes…"):
                questions = make_questions(settings, wanted, n)
        except Exception as exc:
            show_error(exc)
            return
        if not questions:
            st.warning("Your notes had no material for questions on that; try another topic.",
                       icon=":material/warning:")
            return
        names_ = [t or "mixed" for t in wanted]
        _start(questions, ", ".join(names_[:3]) + ("…" if len(names_) > 3 else ""), n)
        st.rerun()
    _progress_chart(settings)
    _downloads(settings)


def _downloads(settings: Settings) -> None:
    """Anki package and CSV of the practised questions, built only when clicked."""
    from rag import export

    try:
        questions = practised(settings)
    except Exception:  # no progress store: nothing to download
        return
    if not questions:
        return
    st.caption(f"Take your {len(questions)} practised question{'s' * (len(questions) != 1)} "
               "elsewhere (re-importing a newer Anki export updates the same notes):")
    c1, c2, _ = st.columns([1, 1, 2])
    c1.download_button("Anki deck (.apkg)", data=lambda: export.anki_bytes(questions),
                       file_name="studyrag.apkg", mime="application/octet-stream",
                       key="pr_dl_anki", on_click="ignore", icon=":material/download:",
                       width="stretch")
    c2.download_button("CSV", data=lambda: export.csv_text(questions),
                       file_name="studyrag-questions.csv", mime="text/csv", key="pr_dl_csv",
                       on_click="ignore", icon=":material/download:", width="stretch")


def _progress_chart(settings: Settings) -> None:
    try:
        rows = topic_scores(settings)
    except Exception:
        return
    if not rows:
        st.caption("Your progress per topic appears here after your first answers.")
        return
    import pandas as pd

    st.subheader("Progress per topic")
    frame = pd.DataFrame(rows)
    if {"topic", "accuracy"} <= set(frame.columns):
        st.bar_chart(frame.set_index("topic")[["accuracy"]], horizontal=True,
                     height=max(160, 28 * len(frame)), x_label="share correct")
    st.dataframe(frame, hide_index=True, width="stretch")


def _question(settings: Settings, r: dict) -> None:
    questions = r["questions"]
    i = r["i"]
    q = questions[i]
    top = st.columns([3, 1, 1])
    top[0].markdown(f"**Question {i + 1} of {len(questions)}** · "
                    f":gray[{md_escape(getattr(q, 'topic', '') or r['label'])}]")
    top[1].metric("Score", f"{r['score']}/{r['answered']}")
    top[2].progress((i + (r["submitted"] is not None)) / len(questions))
    if i == 0 and r.get("asked", 0) > len(questions):
        st.caption(f"You asked for {r['asked']}; your notes gave {len(questions)} question"
                   f"{'s' * (len(questions) != 1)} that pass the checks on this. Add topics "
                   "for more.")
    with st.container(border=True):
        st.markdown(f"<div class='sr-stem'>{html.escape(q.stem)}</div>", unsafe_allow_html=True)
        options = list(q.options)
        choice = st.radio("Your answer", range(len(options)), index=None, key=f"pr_choice_{i}",
                          format_func=lambda k: f"{LETTERS[k]}. {options[k]}",
                          disabled=r["submitted"] is not None, label_visibility="collapsed")
        if r["submitted"] is None:
            if st.button("Submit answer", type="primary", disabled=choice is None,
                         key=f"pr_submit_{i}"):
                r["submitted"] = choice
                r["answered"] += 1
                if choice == q.answer_index:
                    r["score"] += 1
                else:
                    st.session_state.setdefault("pr_missed", []).insert(0, {
                        "question": q.stem, "options": dict(zip(LETTERS, q.options)),
                        "chosen": LETTERS[choice], "correct": LETTERS[q.answer_index]})
                r["card"] = None
                try:
                    r["card"] = record(settings, q, choice)
                except Exception as exc:
                    st.toast(f"Progress not saved: {exc}")
                st.rerun()
            return
    chosen = r["submitted"]
    right = q.answer_index
    if chosen == right:
        st.success(f"**Correct!** {LETTERS[right]}. {md_escape(options[right])}",
                   icon=":material/check_circle:")
        if r.get("card") is not None:
            _self_rating(settings, r, q, i)
    else:
        st.warning(f"**Not quite.** You picked {LETTERS[chosen]}; the answer is "
                   f"**{LETTERS[right]}. {md_escape(options[right])}**  \n"
                   "This question will come back for review.", icon=":material/cancel:")
    if r.get("card") is not None:
        from rag.progress import when

        st.caption(f"Next review {when(r['card'].due_at)} (FSRS schedule).")
    if getattr(q, "explanation", ""):
        st.markdown(md_escape(q.explanation))
    passage = getattr(q, "passage", None)
    if passage is not None:
        with st.expander("From your notes", expanded=True):
            # the note lines the explanation quotes are the ones to highlight
            quoted = re.findall(r'"([^"]{12,})"', getattr(q, "explanation", ""))
            show_passage(passage, quoted or [getattr(q, "explanation", ""), options[right]])
    cols = st.columns([1, 1, 2])
    last = i + 1 >= len(questions)
    if cols[0].button("See results" if last else "Next question", type="primary",
                      icon=":material/arrow_forward:", key=f"pr_next_{i}", width="stretch"):
        r["i"] += 1
        r["submitted"] = None
        r.pop("rated", None)
        st.rerun()
    if chosen != right and cols[1].button("Explain my mistake", key=f"pr_explain_{i}",
                                          icon=":material/psychology_alt:", width="stretch"):
        st.session_state["explain_prefill"] = {
            "question": q.stem, "options": dict(zip(LETTERS, options)),
            "chosen": LETTERS[chosen], "correct": LETTERS[right]}
        from rag.ui import app

        app.go("explain")


def _self_rating(settings: Settings, r: dict, q, i: int) -> None:
    """Hard / Easy / "I guessed" re-rate the answer just saved as Good."""
    pick = st.segmented_control("How was it?", list(SELF_RATINGS), default="Good",
                                key=f"pr_rate_{i}")
    if pick and pick != r.get("rated", "Good"):
        try:
            r["card"] = rate(settings, q, SELF_RATINGS[pick])
            r["rated"] = pick
        except Exception as exc:
            st.toast(f"Rating not saved: {exc}")


def _summary(settings: Settings, r: dict) -> None:
    n = len(r["questions"])
    st.subheader(f"Round finished: {r['score']} of {n} correct")
    st.progress(r["score"] / max(n, 1))
    if r["score"] < n:
        st.caption("Missed questions come back on the Practice page when they are due.")
    if st.button("Practise again", type="primary", icon=":material/replay:", key="pr_again"):
        st.session_state.pop("pr_round", None)
        st.rerun()
    _progress_chart(settings)


STEM_CSS = "<style>.sr-stem{font-size:1.12rem;font-weight:600;line-height:1.5}</style>"


def page() -> None:
    settings = resources.session_settings()
    st.html(STEM_CSS)
    st.title("Practice")
    r = _round()
    if r is None:
        st.caption("Multiple-choice questions written from your notes. Each answer is graded "
                   "with the passage it comes from; every question comes back when FSRS "
                   "says you are about to forget it.")
        _setup(settings)
    elif r["i"] >= len(r["questions"]):
        _summary(settings, r)
    else:
        if st.sidebar.button("Stop this round", icon=":material/stop:", width="stretch"):
            st.session_state.pop("pr_round", None)
            st.rerun()
        _question(settings, r)
