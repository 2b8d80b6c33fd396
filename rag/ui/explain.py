"""Explain my mistake: an exam question, the option you picked (and maybe the right one) →
a structured explanation from your notes, every fact cited."""

from __future__ import annotations

import streamlit as st

from rag.ui import resources
from rag.ui.common import location_label, md_escape, show_error, show_passage

LETTERS = "ABCD"
LABELS = {"backs": ":green[backs this requirement]", "contradicts": ":red[contradicts it]",
          "silent": ":gray[notes silent]"}


def cited_by(result) -> dict[int, list[str]]:
    """{n: the note lines the explanation cites with [n]} (to highlight them in the passage)."""
    out: dict[int, list[str]] = {}
    s = result.sections
    for reason in s.chosen_fails + s.correct_fits + s.key_points:
        if reason.citation and reason.quote:
            out.setdefault(reason.citation, []).append(reason.quote.split(": ")[-1])
    for ev in result.evidence:
        if ev.citation and ev.quote:
            out.setdefault(ev.citation, []).append(ev.quote.split(": ")[-1])
    return out


def _reason_md(reason) -> str:
    cite = f" **[{reason.citation}]**" if reason.citation else ""
    return md_escape(reason.text) + cite


def _box(title: str, reasons: list, bullets: bool = False) -> None:
    if not reasons:
        return
    with st.container(border=True):
        st.markdown(f"##### {md_escape(title)}")
        lines = [_reason_md(r) for r in reasons]
        st.markdown("\n".join(f"- {x}" for x in lines) if bullets else "  \n".join(lines))


def render_explanation(result) -> None:
    """The typed sections of ``rag.explain.Explanation``; no prose is re-parsed."""
    if result.abstained:
        st.warning(md_escape(result.explanation), icon=":material/travel_explore:")
        return
    opts, s = result.options, result.sections
    cols = st.columns(2)
    cols[0].markdown(f"**You picked** {result.chosen} — {md_escape(opts.get(result.chosen, ''))}")
    if result.correct:
        how = ("as you gave it" if result.correct_given
               else f"decided from your notes ({result.confidence} confidence)")
        right = ":green[:material/check:] " if result.correct == result.chosen else ""
        cols[1].markdown(f"**Correct** {result.correct} {right}— "
                         f"{md_escape(opts.get(result.correct, ''))}  \n:gray[{how}]")
    else:
        cols[1].markdown("**Correct:** :orange[your notes don't decide]")
    st.markdown(f"**Key requirement:** {md_escape(s.requirement)}")
    if result.backend == "generated":
        with st.container(border=True):
            st.markdown(md_escape(result.explanation.split("\n\n")[0]))
            st.caption("Written by the generator from the cited lines; every sentence passed "
                       "the support check.")
    if result.correct != result.chosen or result.correct is None:
        _box(f"Why {result.chosen} falls short", s.chosen_fails)
    if result.correct:
        _box(f"Why {result.correct} fits", s.correct_fits)
    with st.container(border=True):
        st.markdown("##### Evidence for each option")
        for ev in result.evidence:
            quote = f": {md_escape(ev.quote)} **[{ev.citation}]**" if ev.quote else ""
            st.markdown(f"- **{ev.letter}** {LABELS[ev.label]}{quote}")
    _box("Key points to remember", s.key_points, bullets=True)
    sentences = cited_by(result)
    if result.citations:
        st.markdown("##### Sources")
    for c in result.citations:
        with st.expander(f"[{c.n}] {location_label(c.passage)}"):
            show_passage(c.passage, sentences.get(c.n, []))


def _apply_prefill() -> None:
    """A question handed over from Practice (or the history picker) fills the form."""
    pre = st.session_state.pop("explain_prefill", None)
    if not pre:
        return
    st.session_state["ex_question"] = pre.get("question", "")
    options = pre.get("options") or {}
    for letter in LETTERS:
        st.session_state[f"ex_opt_{letter}"] = options.get(letter, "")
    st.session_state["ex_chosen"] = pre.get("chosen") or "A"
    st.session_state["ex_correct"] = pre.get("correct")
    st.session_state.pop("ex_result", None)


def _history_picker() -> None:
    try:
        from rag.ui import practice
        missed = practice.missed_questions(resources.session_settings())
    except Exception:  # no practice history yet (or the module is missing): just paste
        return
    if not missed:
        return
    labels = {i: f"{q['question'][:90]}…" if len(q["question"]) > 90 else q["question"]
              for i, q in enumerate(missed)}
    pick = st.selectbox("…or pick a question you missed in Practice", [None, *labels],
                        format_func=lambda i: "—" if i is None else labels[i], key="ex_pick")
    if pick is not None and st.session_state.get("_ex_picked") != pick:
        st.session_state["_ex_picked"] = pick
        st.session_state["explain_prefill"] = missed[pick]
        st.rerun()


def page() -> None:
    settings = resources.session_settings()
    st.title("Explain my mistake")
    st.caption("Paste an exam question and the option you picked. studyrag explains, from "
               "your notes, why it falls short and why the right option fits — every fact "
               "with a citation.")
    _apply_prefill()
    _history_picker()
    question = st.text_area(
        "Exam question", key="ex_question", height=150,
        placeholder="A company needs … What should the solutions architect do?\n"
                    "A. …\nB. …\nC. …\nD. …",
    )
    st.caption("Options can be lines like `A. …` inside the question, or typed here:")
    grid = st.columns(2)
    typed = {}
    for i, letter in enumerate(LETTERS):
        value = grid[i % 2].text_input(f"Option {letter}", key=f"ex_opt_{letter}")
        if value.strip():
            typed[letter] = value.strip()
    options = typed
    if len(typed) < 2 and question.strip():
        from rag.explain import parse_options

        options = parse_options(question)[1]
    letters = list(options) or list(LETTERS)
    label = (lambda k: f"{k} — {options[k][:70]}" if k in options else k)
    if st.session_state.get("ex_chosen") not in letters:
        st.session_state["ex_chosen"] = letters[0]
    if st.session_state.get("ex_correct") not in [None, *letters]:
        st.session_state["ex_correct"] = None
    c1, c2 = st.columns(2)
    chosen = c1.selectbox("The option you picked", letters, format_func=label, key="ex_chosen")
    correct = c2.selectbox("The right answer (optional)", [None, *letters], key="ex_correct",
                           format_func=lambda k: "I don't know — decide from my notes"
                           if k is None else label(k))
    if st.button("Explain", type="primary", icon=":material/psychology_alt:", key="ex_go"):
        try:
            with st.spinner("Reading your notes about each option…"):
                explainer = resources.get_explainer(settings)
                st.session_state["ex_result"] = explainer.explain(
                    question, chosen, correct, typed if len(typed) >= 2 else None)
        except Exception as exc:
            st.session_state.pop("ex_result", None)
            show_error(exc)
    result = st.session_state.get("ex_result")
    if result is not None:
        st.divider()
        render_explanation(result)
