"""Collect the embedded model's lead sentences on the TEST halves, for blind labelling.

    .venv/bin/python evals/embedded_leads.py OUT.jsonl

Runs the embedded backend (SmolLM2, offline) on the test half of each user-style set and
writes every lead it wrote: the question, the lead, whether the support check and lead gate
kept it (``shown``), and the note sentences it was given. A person (or a fresh helper) who did
not write the code then adds ``"correct": true|false`` to each shown lead; the share of shown
leads that are right decides whether generated leads are shown offline (issue: >= 95 %).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from evals.tune_answers import SUBJECTS  # noqa: E402
from rag.chains import Tutor  # noqa: E402
from rag.config import load_settings  # noqa: E402
from evals.harness import eval_settings, load_dataset  # noqa: E402
from rag.index import NoteIndex  # noqa: E402
from rag.retrieval import HybridSearch  # noqa: E402


def main() -> int:
    out = Path(sys.argv[1])
    rows = []
    for name, (dataset, notes) in SUBJECTS.items():
        if not notes.is_dir():
            print(f"skipping {name}: {notes} missing", file=sys.stderr)
            continue
        answer = {"backend": "embedded", "embedded_lead": True}
        settings = eval_settings(load_settings(answer=answer), notes)
        index = NoteIndex(settings)
        index.ingest(settings.storage.notes_dir)
        tutor = Tutor(settings, HybridSearch(settings, index))
        for item in load_dataset(dataset, settings.storage.notes_dir):
            if item.split != "test" or not item.answerable:
                continue
            answer = tutor.ask(item.question)
            if answer.abstained or answer.backend != "embedded" and not answer.fell_back:
                continue
            lead = answer.sentences[0] if answer.sentences else None
            if lead is None or not answer.model:
                continue
            rows.append({"subject": name, "id": item.id, "question": item.question,
                         "lead": lead.text, "shown": lead.supported,
                         "notes_given": [s.text for s in answer.sentences[1:3]],
                         "answer": answer.answer})
            print(f"{item.id} shown={lead.supported} {lead.text[:80]}", file=sys.stderr)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                   encoding="utf-8")
    print(f"{len(rows)} leads, {sum(r['shown'] for r in rows)} shown -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
