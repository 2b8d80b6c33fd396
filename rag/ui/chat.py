"""Chat: cited answers from the notes, streamed, with follow-ups and source passages.

Each answer is produced in a thread of its own and kept in the session, so a question sent
while another answer streams (which makes Streamlit stop this run and start a new one) waits
for that answer instead of dropping it.
"""

from __future__ import annotations

import threading
import time

import streamlit as st

from rag.chains import NOT_COVERED, Turn
from rag.citations import markers
from rag.config import Settings
from rag.errors import GenerationError
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


def history(before: int | None = None) -> list[Turn]:
    """The conversation (up to message ``before``) as turns, for follow-up questions."""
    turns, question = [], None
    for m in _messages()[:before]:
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
        cites = markers(s.citations)
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


class AnswerJob:
    """One answer being generated outside the script run, so that no rerun can lose it."""

    def __init__(self, tutor, question: str, turns: list[Turn]):
        self.pieces: list[str] = []
        self.answer: Answer | None = None
        self.error: Exception | None = None
        self.done = threading.Event()
        threading.Thread(target=self._run, args=(tutor, question, turns),
                         name="studyrag-answer", daemon=True).start()

    def _run(self, tutor, question: str, turns: list[Turn]) -> None:
        try:
            for piece in tutor.stream(question, turns):
                if isinstance(piece, str):
                    self.pieces.append(piece)
                else:
                    self.answer = piece
            if self.answer is None:
                self.error = GenerationError("No answer came back; try again.")
        except Exception as exc:  # shown in place of the answer
            self.error = exc
        finally:
            self.done.set()


def _finish(settings: Settings, messages: list[dict], idx: int, slot) -> None:
    """Start the answer of message ``idx`` if it is still queued, stream it into ``slot``
    until it is done, then keep it in the conversation (or the error in its place)."""
    m = messages[idx]
    if "job" not in m:
        try:
            tutor = resources.get_tutor(settings)
        except Exception as exc:
            m["error"] = exc
            with slot.container():
                show_error(exc)
            return
        m["job"] = AnswerJob(tutor, messages[idx - 1]["content"], history(before=idx))
    job: AnswerJob = m["job"]
    with slot.container():
        box, shown, beat = st.empty(), 0, 0.0
        while not job.done.wait(0.05):
            # Touch the page now and then even without new text: Streamlit only notices a
            # newly sent question (and starts the run that shows it) when the page is updated.
            if len(job.pieces) != shown or time.monotonic() - beat > 0.5:
                shown, beat = len(job.pieces), time.monotonic()
                if shown:
                    box.markdown(md_escape("".join(job.pieces[:shown])) + " ▌")
                else:
                    box.empty()
        box.empty()
        m.clear()
        m.update(role="assistant", **({"answer": job.answer} if job.error is None
                                      else {"error": job.error}))
        if job.error is None:
            render_answer(job.answer, idx)
        else:
            show_error(job.error)


def page() -> None:
    settings = resources.session_settings()
    st.title("Ask your notes")
    messages = _messages()
    prompt = st.chat_input("Ask a question about your notes…", key="chat_prompt")
    if messages and st.sidebar.button("New conversation", icon=":material/add_comment:", width="stretch"):
        st.session_state["chat"] = []
        st.rerun()
    asked = [q for q in (st.session_state.pop("pending_question", None), prompt) if q]
    for question in asked:  # queued behind any answer still being written
        messages += [{"role": "user", "content": question}, {"role": "assistant"}]
    if not messages:
        st.caption("Answers come only from your notes, with numbered citations you can open. "
                   "Ask follow-ups — the conversation is remembered.")
        cols = st.columns(len(EXAMPLES))
        for i, (col, q) in enumerate(zip(cols, EXAMPLES)):
            if col.button(q, key=f"example_{i}", width="stretch"):
                st.session_state["pending_question"] = q
                st.rerun()
    waiting = []
    for idx, m in enumerate(messages):
        with st.chat_message(m["role"]):
            if m["role"] == "user":
                st.markdown(md_escape(m["content"]))
            elif m.get("answer") is not None:
                with friendly_errors():
                    render_answer(m["answer"], idx)
            elif "error" in m:
                show_error(m["error"])
            else:
                slot = st.empty()
                if waiting:
                    slot.caption("Queued: answered after the question above.")
                waiting.append((idx, slot))
    for idx, slot in waiting:  # in order: each answer sees the ones before it as history
        _finish(settings, messages, idx, slot)


__all__ = ["page", "render_answer", "answer_markdown", "NOT_COVERED"]
