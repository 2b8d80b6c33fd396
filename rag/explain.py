"""Explain an exam answer from the notes: the note line that makes the chosen option fail,
the one that makes the correct option fit, and the evidence for every option, all cited.

Evidence comes from the one retrieval path (``HybridSearch``) run for the scenario and for
each option. Every clause of those passages is scored against "scenario + option"
(embedding cosine plus the IDF-weighted share of the scenario's own terms the clause shares);
a clause counts for an option only when it names that option and no other. Text the notes
wrote about one particular question (a verdict, "you chose ...") counts only when its passage
is about this very scenario, and second-person lines are never shown as reasoning. When the
scenario states a size or a duration, each option's limits of that kind are looked up too, and
a bound the scenario breaks ("up to 4 KB" for 10 MB images) is the first reason the chosen
option fails, said with both figures (``rag.quantities``).

Without the key the explainer settles only on a clear lead (thresholds fitted on the tune
halves of ``evals/datasets/explain_exam.jsonl`` and ``explain_dev.jsonl``); otherwise it shows
the evidence per option and says the notes don't decide. The result is typed: the app renders
``Explanation.sections`` and ``evidence``; ``explanation`` is the same content as plain text.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from rag.citations import parse_sentences, render
from rag.config import ExplainSettings
from rag.errors import InputError, StudyragError
from rag.evidence import (SCENARIO_LINE, YOUR_CHOICE, Clause, VectorCache,
                          clauses_of, distinctive_terms, is_limit, stems)
from rag.generation.registry import writes
from rag.models import Citation, Hit
from rag.quantities import Bound, check_bound, limit_query, quantities
from rag.retrieval import clean_question
from rag.text import as_sentence, content_terms, mentions, names, sentences, stem, strip_markup

LETTERS = "ABCDE"
_OPTION_LINE = re.compile(r"^\s*(?:[-*]\s*)?(?:\(([A-Ea-e])\)|([A-Ea-e])[.):])\s+(.+?)\s*$",
                          re.MULTILINE)
_OPTION_INLINE = re.compile(r"(?:^|\s)(?:\(([A-E])\)|([A-E])[.)])\s+")
_REQUIREMENT = re.compile(
    r"\b(must|need|needs|wants?|required?|requirement|without|least|most|minimal|minimi[sz]e|"
    r"cost-effective|cheapest|fastest|should|only|cannot|comply|secure|highly available)\b",
    re.IGNORECASE)
log = logging.getLogger(__name__)

UNKNOWN, NEIGHBOUR = -1, -2  # owner of a clause whose subject is unnamed / names no option
Label = Literal["backs", "contradicts", "silent"]
Confidence = Literal["high", "medium", "low", "none"]


class Reason(BaseModel):
    """One cited sentence of the explanation: what is said and the note line it rests on."""

    text: str
    quote: str = ""
    citation: int | None = None

    def render(self) -> str:
        return f"{self.text} [{self.citation}]" if self.citation else self.text


class Sections(BaseModel):
    """What the app renders, in order."""

    requirement: str = ""
    verdict: str = ""
    chosen_fails: list[Reason] = Field(default_factory=list)
    correct_fits: list[Reason] = Field(default_factory=list)
    key_points: list[Reason] = Field(default_factory=list)


class OptionEvidence(BaseModel):
    """What the notes say about one option *for this question's requirement*."""

    letter: str
    text: str
    label: Label = "silent"
    quote: str = ""
    citation: int | None = None
    score: float = 0.0


class Explanation(BaseModel):
    question: str
    options: dict[str, str]
    chosen: str
    correct: str | None = None
    correct_given: bool = False
    settled: bool = False
    confidence: Confidence = "none"
    sections: Sections = Field(default_factory=Sections)
    evidence: list[OptionEvidence] = Field(default_factory=list)
    explanation: str = ""
    citations: list[Citation] = Field(default_factory=list)
    abstained: bool = False
    backend: str = "extractive"

    def to_json(self) -> dict:
        return self.model_dump(mode="json")


def parse_options(text: str) -> tuple[str, dict[str, str]]:
    """Split "stem + options A–E" (one per line, or inline "A) .. B) ..") into both parts."""
    found = list(_OPTION_LINE.finditer(text))
    letters = [(m.group(1) or m.group(2)).upper() for m in found]
    if len(found) >= 2 and letters == list(LETTERS[: len(letters)]):
        stem = text[: found[0].start()].strip()
        return stem, {letter: m.group(3).strip() for letter, m in zip(letters, found)}
    inline = list(_OPTION_INLINE.finditer(text))
    picked, want = [], 0
    for m in inline:
        if want < len(LETTERS) and (m.group(1) or m.group(2)) == LETTERS[want]:
            picked.append(m)
            want += 1
    if len(picked) >= 2:
        stem = text[: picked[0].start()].strip()
        options = {}
        for i, m in enumerate(picked):
            end = picked[i + 1].start() if i + 1 < len(picked) else len(text)
            options[LETTERS[i]] = text[m.end(): end].strip().rstrip(";,")
        return stem, options
    return text.strip(), {}


def key_requirement(stem: str) -> str:
    """The scenario's constraint sentences (the ones with must/without/least...)."""
    found = sentences(stem)
    picked = [s for s in found if _REQUIREMENT.search(s)] or found[-1:]
    return " ".join(picked[-2:])


def _letter(value: str | None, options: dict[str, str], what: str) -> str | None:
    if value is None or value == "":
        return None
    letter = str(value).strip().strip("().").upper()
    if letter not in options:
        raise InputError(
            f"The {what} option {value!r} is not one of {', '.join(options) or 'the options'}.")
    return letter


def _scenario_text(hit: Hit) -> str:
    """The exam prompt a passage states (quoted or "prompt:" lines), if any."""
    lines = [strip_markup(raw.strip().lstrip(">").strip()) for raw in hit.chunk.text.split("\n")
             if raw.lstrip().startswith(">") or SCENARIO_LINE.match(raw.strip().lstrip("-*_ "))]
    return " ".join(line for line in lines if len(line) > 40)


def _section(hit: Hit) -> tuple[str, str]:
    """The top-level section a passage belongs to (a prompt and its solution may be split
    over neighbouring chunks of one section)."""
    return hit.chunk.file, (hit.chunk.heading or "").split(" > ")[0]


def _short(option: str, words: int = 12) -> str:
    parts = option.rstrip(".").split()
    return " ".join(parts[:words]) + ("…" if len(parts) > words else "")


@dataclass
class _Scored:
    """The clause pool of one question with the per-option scores the decision uses."""

    clauses: list[Clause]
    usable: np.ndarray  # may be used as evidence for this question
    support: np.ndarray  # clauses x options: score where the clause backs that option, else -inf
    against: np.ndarray  # clauses x options: score where the clause limits that option
    named: np.ndarray  # clauses x options: score where the clause names it (maybe with others)
    describes: np.ndarray  # clauses x options: score where the clause is plainly about it
    cos: np.ndarray  # clauses x options: cos(clause, scenario + option)
    owner: np.ndarray  # per clause: the option its subject is, else UNKNOWN or NEIGHBOUR
    # (clause, option) -> a bound the clause states for that option which the scenario's own
    # quantity breaks ("max 15 minutes" for a two-hour job): the plainest reason it fails
    conflicts: dict[tuple[int, int], Bound] = field(default_factory=dict)
    # (clause, option) -> a bound of that option the scenario's quantity keeps: why it fits
    kept: dict[tuple[int, int], Bound] = field(default_factory=dict)


class Explainer:
    """Builds explanations with the tutor's retrieval (and its generator, when configured)."""

    def __init__(self, tutor, per_option_k: int = 4, scenario_k: int = 6):
        self.tutor = tutor
        self.search = tutor.search
        self.params = tutor.settings.explain
        self.vectors = VectorCache(self.search.index.embedder)
        self.per_option_k = per_option_k
        self.scenario_k = scenario_k

    # --- evidence -------------------------------------------------------------------------
    def gather(self, stem: str, options: dict[str, str]) -> list[Hit]:
        """Hits for the scenario and for each option (option + scenario terms), merged."""
        pool: dict[str, Hit] = {}
        focus = " ".join(content_terms(key_requirement(stem))[:8])
        queries = [(stem, self.scenario_k)] + [
            (f"{text} {focus}".strip(), self.per_option_k) for text in options.values()]
        # The scenario needs a size or a duration: look up each option's limits of that kind.
        kinds = dict.fromkeys(q.kind for q in quantities(stem))
        queries += [(f"{text} {limit_query(kind)}", self.per_option_k)
                    for kind in kinds for text in options.values()]
        for query, k in queries:
            for hit in self.search.hits(query, k):
                if hit.id not in pool or hit.fused > pool[hit.id].fused:
                    pool[hit.id] = hit
        return list(pool.values())

    def score(self, stem: str, options: dict[str, str], hits: list[Hit]) -> _Scored:
        clauses = [c for c in clauses_of(hits) if not c.scenario]
        keys = list(options)
        n = len(clauses)
        if not n:
            empty = np.zeros((0, len(keys)))
            return _Scored([], np.zeros(0, bool), empty, empty, empty, empty, empty,
                           np.zeros(0, int))
        cvecs = self.vectors.encode([c.context for c in clauses])
        svec = self.vectors.encode([stem])[0]
        claims = self.vectors.encode([f"{stem} {options[k]}" for k in keys])
        cos = cvecs @ claims.T
        about = cvecs @ self.vectors.encode([options[k] for k in keys]).T
        pvecs = self.vectors.encode([h.chunk.text for h in hits])
        prel = np.clip(pvecs @ svec, 0.01, 1.0)
        fit = self.params
        same = (prel / prel.max()) ** 4 >= fit.same_scenario
        prompts = [_scenario_text(h) for h in hits]
        asked = [i for i, p in enumerate(prompts) if p]
        if asked:  # a section that states this very scenario (its prompt) is about it
            sims = self.vectors.encode([prompts[i] for i in asked]) @ svec
            sections = {_section(hits[i]) for i, sim in zip(asked, sims) if sim >= fit.same_prompt}
            same |= np.array([_section(h) in sections for h in hits])
        usable = np.array([not c.bound or same[c.hit_index] for c in clauses])
        lexical = self._lexical(stem, options, clauses)
        distinct = distinctive_terms(options)
        df: dict[str, int] = {}
        for c in clauses:
            for t in c.pos_terms | c.neg_terms:
                df[t] = df.get(t, 0) + 1
        pos = np.zeros((n, len(keys)))
        neg = np.zeros((n, len(keys)))
        for j, k in enumerate(keys):
            idf = {t: math.log(1 + n / (1 + df.get(t, 0))) for t in distinct[k]}
            total = sum(idf.values()) or 1.0
            for i, c in enumerate(clauses):
                pos[i, j] = sum(w for t, w in idf.items() if t in c.pos_terms) / total
                neg[i, j] = sum(w for t, w in idf.items() if t in c.neg_terms) / total
        owner = np.array([self._owner(c, options, distinct, df, n) for c in clauses])
        value = cos + fit.lex_weight * lexical[:, None]
        support = np.full((n, len(keys)), -np.inf)
        against = np.full((n, len(keys)), -np.inf)
        named_any = np.full((n, len(keys)), -np.inf)
        describes = np.full((n, len(keys)), -np.inf)
        limits = np.array([is_limit(c.text) for c in clauses])
        for j in range(len(keys)):
            others = [x for x in range(len(keys)) if x != j]
            alone = pos[:, others].max(axis=1) < fit.own_share if others else np.ones(n, bool)
            backs = usable & (pos[:, j] >= fit.own_share) & alone
            # a line whose subject is something else describes and limits it in nothing
            mine = (owner == j) | (owner == UNKNOWN)
            support[backs, j] = value[backs, j]
            stated = usable & mine & ((pos[:, j] >= fit.own_share / 2)
                                      | (about[:, j] >= fit.names_cos))
            named_any[stated, j] = value[stated, j] + 0.5 * pos[stated, j]
            # A limit counts against an option only in a line about it: naming it, and not
            # naming another option as much ("When to use EBS > ... does not destroy data"
            # says nothing against the instance store).
            share = np.maximum(pos[:, j], neg[:, j])
            rival = np.maximum(pos[:, others], neg[:, others]).max(axis=1) if others \
                else np.zeros(n)
            about_it = (owner == j) | ((owner == UNKNOWN) & (share >= fit.own_share)
                                       & (share > rival))
            limited = usable & about_it & ((neg[:, j] >= fit.own_share) | limits)
            against[limited, j] = value[limited, j]
            own = usable & mine & (pos[:, j] >= 2 * fit.own_share) & alone
            describes[own, j] = value[own, j]
        # A bound counts against the option the line is closest to (the option may be named
        # only by an outline parent or an abbreviation), unless its subject is another option.
        needed = quantities(stem)
        conflicts, kept = {}, {}
        for i, c in enumerate(clauses):
            found = check_bound(needed, c.text) if usable[i] else None
            if not found:
                continue
            spelled = [j for j, k in enumerate(keys) if _abbreviates(c.text, options[k])]
            j = spelled[0] if len(spelled) == 1 else int(np.argmax(about[i]))
            if owner[i] in (j, UNKNOWN, NEIGHBOUR) and (
                    about[i, j] >= fit.owned_cos or owner[i] == j or spelled):
                (conflicts if found.broken else kept)[i, j] = found
        for i, j in conflicts:
            against[i, j] = max(against[i, j], value[i, j])
        return _Scored(clauses, usable, support, against, named_any, describes, cos, owner,
                       conflicts, kept)

    def _owner(self, clause: Clause, options: dict[str, str], distinct: dict[str, set[str]],
               df: dict[str, int], n: int) -> int:
        """The option a clause is about, read from its subject (``Clause.subjects``, nearest
        first). A subject that starts with a name decides: the option that writes that name,
        or NEIGHBOUR when none does; otherwise the option most of whose distinctive terms the
        subject writes. A sibling of that option ("NAT Instances" for "a NAT gateway",
        ``_compound``) is NEIGHBOUR too; UNKNOWN when no subject names anything. Headings are
        Title Case, so only their terms count."""
        keys = list(options)
        last = len(clause.subjects) - 1
        for k, text in enumerate(clause.subjects):
            words = stems(text)
            shares = []
            for key in keys:
                idf = {t: math.log(1 + n / (1 + df.get(t, 0))) for t in distinct[key]}
                shares.append(sum(w for t, w in idf.items() if t in words)
                              / (sum(idf.values()) or 1.0))
            first = text.split()[0].strip(",.:;()") if text.split() else ""
            if k < last and len(first) > 2 and first.lower() in names(text):
                holders = [j for j, key in enumerate(keys) if mentions(options[key], first)]
                if not holders:
                    return NEIGHBOUR
                shares = [s if j in holders else 0.0 for j, s in enumerate(shares)]
            elif max(shares) < self.params.own_share:
                continue
            best = max(shares)
            if shares.count(best) > 1:
                return UNKNOWN
            j = shares.index(best)
            return NEIGHBOUR if k < last and _compound(text, distinct[keys[j]],
                                                       options[keys[j]]) else j
        return UNKNOWN

    def _lexical(self, stem: str, options: dict[str, str], clauses: list[Clause]) -> np.ndarray:
        """IDF-weighted share of the scenario's own terms (not the options') in each clause."""
        index = self.search.index
        df, total_docs = index.term_df(), max(len(index.chunks()), 1)
        wanted = stems(stem) - set().union(*(stems(o) for o in options.values()))
        weights = {t: math.log(1 + total_docs / (1 + df.get(t, 0))) for t in wanted}
        total = sum(weights.values()) or 1.0
        return np.array([sum(w for t, w in weights.items() if t in stems(c.context)) / total
                         for c in clauses])

    def decide(self, scored: _Scored, keys: list[str]) -> tuple[str | None, Confidence]:
        """The best-backed option when it leads clearly and its clause fits the scenario."""
        if not scored.clauses or len(keys) < 2:
            return None, "none"
        best = scored.support.max(axis=0)
        best = np.where(np.isfinite(best), best, 0.0)
        order = np.argsort(-best)
        top, second = order[0], order[1]
        lead = best[top] - best[second]
        at = int(np.argmax(scored.support[:, top]))
        if lead >= self.params.settle_lead and np.isfinite(scored.support[at, top]) \
                and scored.cos[at, top] >= self.params.settle_cos:
            return keys[top], "high" if lead >= self.params.high_lead else "medium"
        return None, "none"

    # --- public API -----------------------------------------------------------------------
    def explain(self, question: str, chosen: str, correct: str | None = None,
                options: dict[str, str] | None = None) -> Explanation:
        question = clean_question(question) if options else question.strip()
        if not question:
            raise InputError("The exam question is empty.")
        stem, parsed = parse_options(question)
        options = {str(k).strip().upper(): str(v).strip() for k, v in (options or parsed).items()
                   if str(v).strip()}
        if len(options) < 2:
            raise InputError(
                "Give the answer options: lines like 'A. ...' inside the question, or --options.")
        stem = clean_question(stem or question)
        chosen_l = _letter(chosen, options, "chosen")
        if chosen_l is None:
            raise InputError("Say which option you chose (e.g. --chosen B).")
        correct_l = _letter(correct, options, "correct")
        hits = self.gather(stem, options)
        scored = self.score(stem, options, hits)
        keys = list(options)
        decided, confidence = self.decide(scored, keys)
        best_rel = max((h.dense for h in hits), default=0.0)
        abstained = (not scored.clauses
                     or best_rel < self.tutor.settings.retrieval.abstain.threshold
                     or not np.isfinite(scored.named).any())  # no line names any option
        if correct_l:
            confidence = confidence if decided == correct_l else "low"
        result = Explanation(
            question=stem, options=options, chosen=chosen_l, correct=correct_l or decided,
            correct_given=bool(correct_l), settled=bool(correct_l or decided) and not abstained,
            confidence="none" if abstained else confidence, abstained=abstained)
        if abstained:
            result.correct = correct_l
            result.confidence = "none"
            result.explanation = (
                "Your notes don't cover this scenario, so they can't explain the answer.")
            return result
        result = _Writer(result, stem, hits, scored, keys, self.params).write()
        return self._generate(result)

    # --- a configured generator rewrites the chosen evidence --------------------------------
    def _generate(self, result: Explanation) -> Explanation:
        """With Ollama/OpenAI configured, the model writes the prose from the cited lines.

        Every generated sentence must cite one of those lines and pass the support check
        (``rag.verify``) against the lines it cites; otherwise the rules' text stays."""
        if not writes(self.tutor.backend) or not result.citations:
            return result
        quotes = _cited_quotes(result)
        if not quotes:
            return result
        numbered = "\n".join(f"[{n}] {q}" for n, q in sorted(quotes.items()))
        correct = (f"{result.correct}. {result.options[result.correct]}"
                   if result.correct else "not decided by the notes")
        prompt = (
            "A student answered an exam question. Using ONLY the numbered note lines, write 3 "
            "to 5 short sentences: why the chosen option fails and why the correct option "
            "fits. End every sentence with the [n] of the note line it uses. Add no facts.\n\n"
            f"Question: {result.question}\nChosen: {result.chosen}. "
            f"{result.options[result.chosen]}\nCorrect: {correct}\n\nNote lines:\n{numbered}")
        try:
            reply = self.tutor.chat_model().invoke(prompt)
        except StudyragError as exc:  # a generator that is down must not break explain
            log.warning("Generator unavailable for explain (%s); using the rules' text.", exc)
            return result
        text = str(getattr(reply, "content", reply)).strip()
        written = parse_sentences(text)
        if not written:
            return result
        verifier = self.tutor.verifier
        for sentence in written:
            cited = [quotes[n] for n in sentence.citations if n in quotes]
            if not cited or len(cited) < len(sentence.citations) or not verifier.check(
                    sentence.text, cited).supported:
                log.info("Generated explanation rejected at: %s", sentence.text)
                return result
        prose = render(written)
        return result.model_copy(update={
            "explanation": f"{prose}\n\n{result.explanation}", "backend": "generated"})


_ACRONYM = re.compile(r"\b([A-Z]{2,6})s?\b")


def _abbreviates(text: str, option: str) -> bool:
    """Does ``text`` write an acronym of words the option spells out ("CMKs" for "a customer
    managed key")?"""
    words = [w[0] for w in re.findall(r"[A-Za-z]+", option.lower())]
    spelled = "".join(words)
    return any(len(a) >= 3 and a.lower() in spelled and not mentions(option, a)
               for a in _ACRONYM.findall(text))


def _compound(text: str, terms: set[str], option: str) -> bool:
    """Does the text name a sibling of the option: one of its terms followed by a name the
    option does not write ("NAT Instances" for "a NAT gateway", "FSx for Lustre" for "FSx
    for Windows")?"""
    words = text.split()
    for i, word in enumerate(words[:-1]):
        if stem(word.lower().strip(",.:;()")) not in terms:
            continue
        after = words[i + 2] if words[i + 1].lower() in ("for", "of") and i + 2 < len(words) \
            else words[i + 1]
        if after.startswith("("):
            continue  # "Security Groups (SGs)": an abbreviation of the same thing
        after = after.strip(",.:;")
        if after[:1].isupper() and not mentions(option, after):
            return True
    return False


def _cited_quotes(result: Explanation) -> dict[int, str]:
    """[n] -> the note lines the explanation cites with n (what a generator may use)."""
    out: dict[int, list[str]] = {}
    s = result.sections
    for reason in s.chosen_fails + s.correct_fits + s.key_points:
        if reason.citation and reason.quote:
            out.setdefault(reason.citation, []).append(reason.quote)
    for ev in result.evidence:
        if ev.citation and ev.quote and ev.label != "silent":
            out.setdefault(ev.citation, []).append(ev.quote)
    return {n: " ".join(dict.fromkeys(q)) for n, q in out.items()}


class _Writer:
    """The rules' explanation: picks the lines, numbers the citations, writes the text."""

    def __init__(self, result: Explanation, stem: str, hits: list[Hit], scored: _Scored,
                 keys: list[str], params: ExplainSettings):
        self.r = result
        self.params = params
        self.stem = stem
        self.hits = hits
        self.s = scored
        self.keys = keys
        self.cited: dict[int, int] = {}  # hit index -> citation number
        self.used: set[int] = set()  # clause indexes already shown
        self.fits_at: int | None = None  # the line that says why the correct option fits

    def cite(self, i: int) -> int:
        hit = self.s.clauses[i].hit_index
        return self.cited.setdefault(hit, len(self.cited) + 1)

    def reason(self, i: int, text: str | None = None) -> Reason:
        self.used.add(i)
        clause = self.s.clauses[i]
        return Reason(text=text or self.says(i), quote=clause.shown, citation=self.cite(i))

    def says(self, i: int) -> str:
        """A note line as a sentence; a line the notes wrote about one particular question is
        introduced as such, never as general reasoning."""
        clause = self.s.clauses[i]
        if clause.bound:
            return f"Your notes' write-up of a similar question says: {as_sentence(clause.text)}"
        return as_sentence(clause.shown)

    def _shown(self, i: int) -> bool:
        """Lines that may be shown: never the notes' second-person write-up of a choice."""
        return i not in self.used and not YOUR_CHOICE.search(self.s.clauses[i].text)

    def best(self, matrix: np.ndarray, letter: str, floor: float, fresh: bool = True,
             owned: bool = False) -> int | None:
        """The highest-scoring usable line for the option at or above ``floor``; ``owned``:
        only lines whose subject is the option."""
        j = self.keys.index(letter)
        col = matrix[:, j]
        ranked = [int(i) for i in np.argsort(-col) if np.isfinite(col[i])
                  and (self._shown(i) or not fresh and i in self.used)]
        ranked = [i for i in ranked if self.s.cos[i, j] >= floor
                  and (not owned or self.s.owner[i] == j)]
        return ranked[0] if ranked else None

    def limit_of(self, letter: str, fresh: bool = True) -> int | None:
        """The line that states the option's limit: a bound that the scenario's own quantity
        breaks first, then one whose subject is the option, else any line about it that is
        close to the scenario."""
        j = self.keys.index(letter)
        broken = [i for (i, k) in self.s.conflicts if k == j
                  and (self._shown(i) or not fresh and i in self.used)]
        if broken:
            return max(broken, key=lambda i: self.s.against[i, j])
        owned = self.best(self.s.against, letter, self.params.owned_cos, fresh, owned=True)
        return owned if owned is not None else self.best(self.s.against, letter,
                                                         self.params.contra_cos, fresh)

    def write(self) -> Explanation:
        r, opts = self.r, self.r.options
        chosen, correct = r.chosen, r.correct
        sec = Sections(requirement=key_requirement(self.stem))
        if correct is None:
            sec.verdict = ("Your notes don't decide which option is correct; the evidence for "
                           "each option is below.")
        else:
            how = ("the answer key you gave" if r.correct_given
                   else f"decided from your notes, {r.confidence} confidence")
            sec.verdict = f"The correct answer is {correct} ({_short(opts[correct])}): {how}."

        wrong = correct is not None and chosen != correct
        if chosen == correct:
            sec.chosen_fails = [Reason(text=f"Your answer {chosen} is the correct one.")]
        else:
            i = self.limit_of(chosen)
            if i is not None:
                broken = self.s.conflicts.get((i, self.keys.index(chosen)))
                why = f": {broken.describe()}." if broken else "."
                sec.chosen_fails.append(self.reason(
                    i, f"{chosen} ({_short(opts[chosen])}) falls short{why} {self.says(i)}"))
            elif wrong:
                j = self.best(self.s.describes, chosen, self.params.backs_cos)
                if j is not None:
                    sec.chosen_fails.append(self.reason(
                        j, f"Your notes link {chosen} ({_short(opts[chosen])}) only with "
                           f"this, which is not what the question asks for. {self.says(j)}"))
                else:
                    sec.chosen_fails.append(Reason(
                        text=f"No line found in your notes rules {chosen} "
                             f"({_short(opts[chosen])}) out for this requirement."))
            else:
                sec.chosen_fails.append(Reason(
                    text=f"Your notes don't show that {chosen} ({_short(opts[chosen])}) fails "
                         "this requirement."))

        if correct is not None:
            j = self.keys.index(correct)
            within = [i for (i, k) in self.s.kept if k == j and self._shown(i)]
            i = max(within, key=lambda i: self.s.cos[i, j]) if within else self.best(
                self.s.named, correct, self.params.backs_cos)
            if i is not None:
                kept = self.s.kept.get((i, j))
                why = f": {kept.describe()}." if kept else "."
                sec.correct_fits.append(self.reason(
                    i, f"{correct} ({_short(opts[correct])}) fits{why} {self.says(i)}"))
                self.fits_at = i
                more = self._same_passage(i, correct)
                if more is None:
                    more = self.best(self.s.named, correct, self.params.backs_cos)
                if more is not None:
                    sec.correct_fits.append(self.reason(more))
            else:
                sec.correct_fits.append(Reason(
                    text=f"No line found in your notes ties {correct} to this requirement."))

        r.evidence = self._evidence()
        sec.key_points = self._key_points([k for k in (chosen, correct) if k])
        r.sections = sec
        passages = [self.hits[h].passage() for h in self.cited]
        r.citations = [Citation(n=n, passage=p) for n, p in zip(self.cited.values(), passages)]
        r.explanation = render_text(r)
        return r

    def _same_passage(self, anchor: int, letter: str) -> int | None:
        """A second backing line for the correct option from the same passage, if any."""
        j = self.keys.index(letter)
        hit = self.s.clauses[anchor].hit_index
        near = [i for i in range(len(self.s.clauses)) if self.s.clauses[i].hit_index == hit
                and self._shown(i) and np.isfinite(self.s.support[i, j])
                and self.s.cos[i, j] >= self.params.backs_cos]
        return max(near, key=lambda i: self.s.support[i, j], default=None)

    def _evidence(self) -> list[OptionEvidence]:
        """Per option: backs (a line names it for this requirement), contradicts (a line
        states its limit), or silent. The correct option (given or decided) is backed by the
        line that says why it fits, and is never "contradicts"; an option it rules wrong is
        never "backs"."""
        out = []
        for j, letter in enumerate(self.keys):
            text = self.r.options[letter]
            correct = letter == self.r.correct
            wrong = self.r.correct is not None and not correct
            against = self.limit_of(letter, fresh=False)
            backs = self.best(self.s.support, letter, self.params.backs_cos, fresh=False)
            if correct and self.fits_at is not None:
                i, label = self.fits_at, "backs"
            elif against is not None and not correct and (
                    letter == self.r.chosen or self.s.owner[against] == j) and (
                    backs is None or wrong or self.s.against[against, j]
                    >= self.s.support[backs, j]):
                i, label = against, "contradicts"
            elif backs is not None and not wrong:
                i, label = backs, "backs"
            else:
                out.append(OptionEvidence(letter=letter, text=text))
                continue
            clause = self.s.clauses[i]
            out.append(OptionEvidence(letter=letter, text=text, label=label,
                                      quote=clause.shown, citation=self.cite(i),
                                      score=round(float(self.s.cos[i, j]), 4)))
        return out

    def _key_points(self, letters: list[str], limit: int = 4) -> list[Reason]:
        """Unused lines close to the scenario with the chosen or the correct option, other
        than lines whose subject is another option or a neighbouring thing (judged blind,
        those misled: a fact about a neighbour read as one about the option)."""
        js = [self.keys.index(k) for k in dict.fromkeys(letters)]
        value = np.where(np.isin(self.s.owner, js + [UNKNOWN]),
                         self.s.cos[:, js].max(axis=1), -1.0)
        picked: list[Reason] = []
        vecs: list[np.ndarray] = []
        for i in np.argsort(-value):
            i = int(i)
            if len(picked) == limit or value[i] < 0.4:
                break
            clause = self.s.clauses[i]
            if not self._shown(i) or not self.s.usable[i] or len(content_terms(clause.text)) < 4:
                continue
            vec = self.s.cos[i]
            if any(float(np.abs(vec - v).max()) < 0.02 for v in vecs):
                continue  # the same fact in other words
            vecs.append(vec)
            picked.append(self.reason(i))
        return picked


def render_text(r: Explanation) -> str:
    """The plain-text form of the sections (CLI, JSON ``explanation``, must-fact checks)."""
    s = r.sections
    blocks = [("What the question asks", [f"Key requirement: {s.requirement}"]),
              ("Verdict", [s.verdict])]
    if r.correct != r.chosen or r.correct is None:
        blocks.append((f"Why {r.chosen} falls short", [x.render() for x in s.chosen_fails]))
    if r.correct:
        blocks.append((f"Why {r.correct} fits", [x.render() for x in s.correct_fits]))
    names = {"backs": "backs this requirement", "contradicts": "contradicts it",
             "silent": "notes silent"}
    blocks.append(("Evidence for each option", [
        f"- {e.letter} ({names[e.label]})" + (f": {as_sentence(e.quote)} [{e.citation}]"
                                               if e.quote else "") for e in r.evidence]))
    if s.key_points:
        blocks.append(("Key points to remember", [f"- {x.render()}" for x in s.key_points]))
    out = []
    for title, lines in blocks:
        lines = [line for line in lines if line]
        if lines:
            joiner = "\n" if lines[0].startswith("- ") else " "
            out.append(f"{title}:\n{joiner.join(lines)}")
    return "\n\n".join(out)

