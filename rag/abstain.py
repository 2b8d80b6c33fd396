"""When the notes don't cover a question: one evidence score, one threshold.

The score combines how close the best candidate line comes to the question in meaning
(embedding similarity in its heading context), how much of the question's IDF weight that line
covers, how much of the question's weight is on terms the notes never use, and whether a
question that asks for a figure ("how long", "how big", "how many") finds no line close to it
that states one of that kind: a topic the notes cover whose asked-for number they never give
is the commonest unanswerable question. No rule looks at capitalisation or at the subject: the
weights and the threshold (``retrieval.abstain`` settings) are fitted on the tune halves of two
subjects' user-style sets (``evals/tune_answers.py``).
"""

from __future__ import annotations

from rag.config import AbstainSettings
from rag.extractive import Candidates


def figure_missing(found: Candidates, window: float) -> bool:
    """The question asks for a figure and no answer line within ``window`` of the best
    line's similarity states one of the asked kind."""
    return bool(found.kinds) and found.figure_sim < found.best_sim - window


def evidence(found: Candidates, weights: AbstainSettings) -> float:
    """Higher is stronger evidence that the notes answer the question."""
    return (found.best_sim + weights.w_lexical * found.best_lexical
            - weights.w_unknown * found.unknown
            - weights.w_figure * figure_missing(found, weights.figure_window))


def abstains(found: Candidates, weights: AbstainSettings) -> bool:
    return not found.units or evidence(found, weights) < weights.threshold
