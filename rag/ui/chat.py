"""Chat: cited answers from the notes, streamed, with follow-ups and source passages."""

from __future__ import annotations

import time

import streamlit as st

from rag.chains import NOT_COVERED, Turn
from rag.config import Settings
from rag.models import Answer
from rag.ui import resources
from rag.ui.common import friendly_errors, location_label, md_escape, show_error, show_passage

EXAMPLES = [
    "What is a cluster placement group?",
    "Can I attach one EBS volume to instances in different availability zones?",
    "When should I use S3 Glacier?",
]


def _messages() -> list[dict]:
    return st.session_state.setdefault("chat", [])


def history() -> list[Turn]:
    """The conversation so far as (question, answer) turns for follow-up questions."""
    turns, question = [], None
    for m in _messages():
        if m["role"] == "user":
            question = m["content"]
        elif question is not None and m.get("answer") is not None:
            turns.append(Turn(question=question, answer=m["answer"].answer))
            question = None
    return turns


def answer_markdown(answer: Answer) -> str:
    """The answer with [n] markers; sentences the verifier rejected are visibly marked."""
    if answer.abstained or not answer.sentences:
        return md_escape(answer.answer)
    parts = []
    for s in answer.sentences:
        cites = "".join(f"[{n}]" for n in s.citations)
        text = md_escape(s.text)
        if not s.supported:
            parts.append(f":orange-background[:material/warning: {text}] :orange[*(not supported by your "
                         f"notes)*] {cites}")
        else:
            parts.append(f"{text} **{cites}**" if cites else text)
    return " ".join(parts)


def cited_sentences(answer: Answer, n: int) -> list[str]:
    return [s.text for s in answer.sentences if n in s.citations]


def render_answer(answer: Answer, idx: int) -> None:
    """Answer text, then one expander per citation, then the action buttons."""
    st.markdown(answer_markdown(answer))
    if answer.abstained:
        if answer.nearest_topics:
            st.info("**Nearest topics in your notes:**  \n"
                    + "  \n".join(f"• {md_escape(t)}" for t in answer.nearest_topics),
                    icon=":material/explore:")
            cols = st.columns(len(answer.nearest_topics))
            for j, (col, topic) in enumerate(zip(cols, answer.nearest_topics)):
                name = topic.rsplit(" (", 1)[0].split(" > ")[-1]
                if col.button(f"Ask about {name}", key=f"near_{idx}_{j}",
                              width="stretch"):
                    st.session_state["pending_question"] = f"What do my notes say about {name}?"
                    st.rerun()
        return
    meta = []
    if "(unsupported)" in answer.answer:
        meta.append(":orange[:material/warning: some sentences are not supported by the cited notes]")
    if answer.fell_back:
        meta.append("the generator was unavailable or failed the support check, so this "
                    "answer quotes the notes")
    meta.append(f"{answer.backend}{' · ' + answer.model if answer.model else ''}")
    meta.append(f"{answer.latency_ms / 1000:.1f} s")
    st.caption(" · ".join(meta))
    show_all = st.session_state.get(f"sources_{idx}", False)
    for c in answer.citations:
        with st.expander(f"[{c.n}] {location_label(c.passage)}", expanded=show_all):
            show_passage(c.passage, cited_sentences(answer, c.n))
    left, right, _ = st.columns([1, 1, 2])
    if left.button("Quiz me on this", icon=":material/quiz:", key=f"quiz_{idx}", width="stretch"):
        topic = answer.citations[0].passage.heading.split(" > ")[-1] if answer.citations \
            else answer.question
        st.session_state["practice_request"] = {"topic": topic, "question": answer.question}
        from rag.ui import app

        app.go("practice")
    label = "Hide sources" if show_all else "Show sources"
    if right.button(label, icon=":material/library_books:", key=f"src_{idx}", width="stretch"):
        st.session_state[f"sources_{idx}"] = not show_all
        st.rerun()


def _stream_answer(settings: Settings, question: str) -> Answer | None:
    """Stream the answer into the page; returns the final Answer."""
    tutor = resources.get_tutor(settings)
    final: dict[str, Answer] = {}
    started = time.perf_counter()

    def pieces():
        for piece in tutor.stream(question, history()):
            if isinstance(piece, str):
                final.setdefault("ttft", time.perf_counter() - started)
                yield piece
            else:
                final["answer"] = piece

    box = st.empty()
    with box.container():
        st.write_stream(pieces)
    box.empty()
    answer = final.get("answer")
    if answer is not None:
        st.session_state["last_ttft_s"] = final.get("ttft")
    return answer


def page() -> None:
    settings = resources.session_settings()
    st.title("Ask your notes")
    messages = _messages()
    prompt = st.chat_input("Ask a question about your notes…", key="chat_prompt")
    if messages and st.sidebar.button("New conversation", icon=":material/add_comment:", width="stretch"):
        st.session_state["chat"] = []
        st.rerun()
    if not messages and not prompt:
        st.caption("Answers come only from your notes, with numbered citations you can open. "
                   "Ask follow-ups — the conversation is remembered.")
        cols = st.columns(len(EXAMPLES))
        for i, (col, q) in enumerate(zip(cols, EXAMPLES)):
            if col.button(q, key=f"example_{i}", width="stretch"):
                st.session_state["pending_question"] = q
                st.rerun()
    for idx, m in enumerate(messages):
        with st.chat_message(m["role"]):
            if m["role"] == "user":
                st.markdown(md_escape(m["content"]))
            elif m.get("answer") is not None:
                with friendly_errors():
                    render_answer(m["answer"], idx)
            else:
                st.error(m.get("error", "No answer."))
    prompt = prompt or st.session_state.pop("pending_question", None)
    if not prompt:
        return
    messages.append({"role": "user", "content": prompt})
    with st.chat_message("user"):
        st.markdown(md_escape(prompt))
    with st.chat_message("assistant"):
        try:
            answer = _stream_answer(settings, prompt)
        except Exception as exc:
            show_error(exc)
            messages.pop()
            return
        if answer is None:
            st.error("No answer came back; try again.")
            messages.pop()
            return
        messages.append({"role": "assistant", "answer": answer})
        render_answer(answer, len(messages) - 1)


__all__ = ["page", "render_answer", "answer_markdown", "NOT_COVERED"]
