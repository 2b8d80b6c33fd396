"""The one text toolkit: tokens, stop words, the stemmer BM25 uses, sentence and clause
splitters, the negation and limit lexicon, and names read off the text."""

from __future__ import annotations

import functools
import math
import re

import Stemmer

WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-/.@]*[A-Za-z0-9]|[A-Za-z0-9]")
STOP = set(
    "a an the and or of to in on for with by is are was were be been being it its this that "
    "these those what which who whom whose when where why how do does did can could should "
    "would will shall may might must i you he she we they them my your our their me us about "
    "as at from into than then there here so if not no yes any some all each more most other "
    "such only own same too very just also get gets use used using between vs versus tell "
    "explain describe difference differ".split()
)


# A Markdown heading line: its level marks and its text (closing #s dropped).
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
# The end of a sentence: . ! ? then a capital, digit, quote or markup ("e.g. a" does not end).
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(`*_\"'\[])")
_MARKUP = re.compile(r"(\*\*|__|`|\*|(?<!\w)_|_(?!\w))")


def sentences(text: str) -> list[str]:
    """The one sentence splitter: at . ! ? followed by a capital, digit, quote or markup."""
    return [s.strip() for s in SENTENCE_END.split(" ".join(text.split())) if s.strip()]


# Where one claim of a sentence ends and the next begins: "; ", a dash, "whereas", a comma
# before a connective (", which", ", so", ", here"), and a remedy after a drawback
# ("... overhead, which can be simplified by using X"). Not at "but": in "X is for ETL, but
# cannot ..." the denial is about X.
_CLAUSE = (r";\s+|\s+-\s+|\s+whereas\s+"
           r"|,\s+(?=(?:here|and|so|therefore|which|whereas|while|instead)\b)"
           r"|\s+(?=which can be (?:simplified|solved|avoided|replaced)\b)"
           r"|\s+(?=by (?:simply )?using\b)")
# Finer cuts for aligning claims: every comma and colon, before a conjunction, and at "and"
# before a second verb ("... and also scales writes", "... and can be reused").
_FINE = (r"[,:]\s+|\s+(?=(?:because|but|while|whereas|although|so)\b)|\s+and\s+also\s+"
         r"|\s+and\s+(?=(?:is|are|can|cannot|can't|will|won't|does|doesn't|do|don't|must|"
         r"should|has|have|automatically)\b)")
_CLAUSES = re.compile(_CLAUSE, re.IGNORECASE)
_FINE_CLAUSES = re.compile(f"{_CLAUSE}|{_FINE}", re.IGNORECASE)


def clauses(sentence: str, fine: bool = False) -> list[str]:
    """The one clause splitter. By default at clause boundaries only, so that a negation
    scopes over its own clause and a list stays whole ("A, B and C cannot ..."); ``fine``
    also cuts at every comma and colon and at "and" before a second verb, for aligning each
    small claim with the line it restates."""
    pattern = _FINE_CLAUSES if fine else _CLAUSES
    return [c.strip() for c in pattern.split(sentence) if c and c.strip()]


# --- the polarity lexicon --------------------------------------------------------------
# Denials ("not", "cannot", "-n't", "never", "no compute capability") and the words that
# leave something out ("without", "neither", "nor"). Both flip a claim (the verifier's
# polarity); only a denial rules an option out, since "without" tells what an option spares
# you as often as what it lacks ("without managing servers").
_DENIAL = (r"\b(?:not|never|cannot|can not|cant|no|none|unable|unencrypted|unsupported|"
           r"impossible)\b|n't\b")
_ABSENCE = r"\b(?:without|neither|nor)\b"
DENIAL = re.compile(_DENIAL, re.IGNORECASE)
NEGATION = re.compile(f"{_DENIAL}|{_ABSENCE}", re.IGNORECASE)
# Stated bounds. A ceiling: "up to 4 KB", "at most", "a maximum of 15 minutes", "no larger
# than", "less than". A floor: "at least 3", "a minimum of 30 days", "larger than 4KB".
_CEILING = (r"\b(?:up to|at most|max(?:imum|imal)?|limit(?:s|ed)?|exceed\w*|"
            r"(?:no|not)\s+(?:more|larger|longer|bigger|greater|later|higher)\s+than|"
            r"(?:less|fewer|smaller|shorter)\s+than)\b")
_FLOOR = (r"\b(?:at least|min(?:imum|imal)?|(?:no|not)\s+(?:less|fewer)\s+than|"
          r"(?:more|greater|larger|longer)\s+than)\b")
CEILING = re.compile(_CEILING, re.IGNORECASE)
FLOOR = re.compile(_FLOOR, re.IGNORECASE)
LIMIT = re.compile(f"{_CEILING}|{_FLOOR}", re.IGNORECASE)
# A negated bound states a limit, not a denial: "no larger than 400 KB", "cannot exceed".
_NEGATED_BOUND = re.compile(
    r"\b(?:no|not)\s+(?:more|larger|longer|bigger|greater|later|higher|fewer|less)\s+than\b"
    r"|\b(?:must|can|may|does|do|should)\s*(?:not|n't)\s+exceed\b"
    r"|\b(?:cannot|can't|won't)\s+exceed\b", re.IGNORECASE)


def negations(text: str) -> int:
    """How many denials ``text`` makes (negated bounds are limits and do not count): its
    parity is the polarity of a claim."""
    return len(NEGATION.findall(_NEGATED_BOUND.sub(" ", text)))


_ASKS_MORE = re.compile(
    r"\s*[,;]?\s+\b(?:and|or|but|plus)\s+(?=(?:what|how|why|when|where|which|who|is|are|was|"
    r"were|can|could|do|does|did|should|will|would|if|also|then)\b)"
    r"|\s*[,;]\s+(?=(?:what|how|why|when|where|which|who)\b)", re.IGNORECASE)


def question_parts(question: str) -> list[str]:
    """The separate asks of a question ("How long ..., and can I extend it?" is two), each
    with two or more content words; one part when it asks one thing."""
    parts = [p.strip() for s in sentences(question) for p in _ASKS_MORE.split(s) if p.strip()]
    return [p for p in parts if len(content_terms(p)) >= 2]


def as_sentence(text: str) -> str:
    """A note line shown as a sentence: a trailing ':', ';' or ',' dropped, and a full stop
    unless it already ends like a sentence (or a bracket, or a quote that ends one)."""
    text = text.strip().rstrip(":;,")
    return text if text.endswith((".", "!", "?", ")", '."', '!"', '?"')) else text + "."


def strip_markup(text: str) -> str:
    """Markdown emphasis and code marks removed, whitespace collapsed."""
    return " ".join(_MARKUP.sub("", text).split())


_NAME_TOKEN = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:[-@][A-Za-z0-9]+)*\b")


def names(text: str) -> set[str]:
    """Names a sentence states, lower-cased: acronyms, CamelCase and letter-digit words (H2O,
    ReLU, PyTorch, LSTM) and capitalised words that do not start a sentence (Kendra,
    Adam). Read off the text itself, so it fits any subject. Runs of capitals ("ITEM MAX")
    are emphasis, not acronyms."""
    out: set[str] = set()
    for sentence in sentences(text):
        words = [m.group(0) for m in _NAME_TOKEN.finditer(sentence)]
        for i, word in enumerate(words):
            caps = word.isupper() and word.isalpha()
            shouted = caps and any(0 <= j < len(words) and words[j].isupper() and
                                   words[j].isalpha() for j in (i - 1, i + 1))
            shaped = (any(c.isupper() for c in word[1:]) and not word.isupper()) or \
                (caps and 2 <= len(word) <= 5 and not shouted) or \
                (any(c.isdigit() for c in word) and any(c.isalpha() for c in word))
            if shaped or (i > 0 and word[0].isupper() and len(word) > 2 and not shouted):
                out.add(word.lower())
    return out


def mentions(text: str, name: str) -> bool:
    """Does ``text`` write ``name`` as a word (any case, singular or plural)?"""
    base = name[:-1] if name.endswith("s") and len(name) > 3 else name
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(base)}(?:s|es)?(?![A-Za-z0-9])", text,
                     re.IGNORECASE) is not None


def content_terms(text: str) -> list[str]:
    """Lower-cased words that carry meaning (stop words and filler dropped)."""
    return [w for w in (t.lower() for t in WORD.findall(text)) if w not in STOP]


STEMMER = Stemmer.Stemmer("english")  # the one stemmer: BM25 tokens and every term match


@functools.lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """Snowball English stem: 'buckets' = 'bucket', 'encryption' = 'encrypts'."""
    return STEMMER.stemWord(word)


def stems(text: str) -> set[str]:
    return {stem(t) for t in content_terms(text)}


def term_pairs(text: str) -> set[str]:
    """Adjacent content-term stems of each line, as "a b" keys."""
    out: set[str] = set()
    for line in text.splitlines():
        terms = [stem(t) for t in content_terms(line)]
        out.update(f"{a} {b}" for a, b in zip(terms, terms[1:]))
    return out


def idf_weights(terms: set[str], df: dict[str, int], n_docs: int) -> dict[str, float]:
    return {t: math.log(1 + n_docs / (1 + df.get(t, 0))) for t in terms}


def coverage(weights: dict[str, float], lines: list[set[str]]) -> tuple[float, float]:
    """IDF-weighted share of the question's terms in the best line and in all lines."""
    total = sum(weights.values())
    if not total or not lines:
        return 0.0, 0.0
    best = max(sum(w for t, w in weights.items() if t in line) for line in lines)
    union = set().union(*lines)
    return best / total, sum(w for t, w in weights.items() if t in union) / total


_NAME = re.compile(r"(?<![.?!] )(?<!^)\b([A-Z][A-Za-z0-9]{3,}|[A-Z]{3,}[a-z]*)\b")
_NAME_RUN = re.compile(r"\b[A-Z][A-Za-z0-9\-]*(?:\s+[A-Z][A-Za-z0-9\-]*)+")


def unknown_names(question: str, df: dict[str, int]) -> list[str]:
    """Names in the question that no note ever mentions.

    A capitalised word (not the first) the notes never use: 'Lightsail', 'Snowcone'. Or a run
    of capitalised words with at least two adjacent pairs the notes never write side by side:
    'Glacier Instant Retrieval' (one unseen pair is too little: 'Gateway Load Balancer' is
    'Gateway LB' in the notes). A question about something the notes never name is not covered.
    """
    out = []
    for match in _NAME.finditer(question.strip()):
        word = match.group(1)
        terms = stems(word)
        if terms and all(df.get(t, 0) == 0 for t in terms):
            out.append(word)
    for match in _NAME_RUN.finditer(question):
        pairs = term_pairs(match.group(0))
        if sum(df.get(p, 0) == 0 for p in pairs) >= 2 and not any(w in match.group(0)
                                                                  for w in out):
            out.append(match.group(0))
    return out
