"""Study guide per topic on real notes: the bundled corpus, a small folder on another subject
written here, and (slow) the deep-learning notes in /work/shared; every line checked against
the file it cites."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rag.guide import NUMBERS_HEADING, GuideMaker, quantity
from rag.text import content_terms, strip_markup

DL_NOTES = Path("/work/shared/notes-deep-learning")


@pytest.fixture(scope="module")
def maker(search):
    return GuideMaker(search)


def _check_citations(guide, notes_dir: Path) -> None:
    """Every item's words are on the lines it cites, in the file it names."""
    assert guide.sections
    for section in guide.sections:
        assert section.heading and section.items
        for item in section.items:
            p = item.passage
            lines = (notes_dir / p.file).read_text(encoding="utf-8").split("\n")
            cited = strip_markup(" ".join(lines[p.start_line - 1:p.end_line]))
            words = set(content_terms(cited))
            missing = [w for w in content_terms(item.text.rstrip(" …")) if w not in words]
            assert not missing, (item.text, p, missing)


def test_guide_groups_cited_note_lines_by_heading(maker, corpus_settings):
    guide = maker.build("S3 storage classes")
    _check_citations(guide, corpus_settings.storage.notes_dir)
    headings = [s.heading for s in guide.sections]
    assert any("Storage Classes" in h for h in headings)
    assert headings[-1] == NUMBERS_HEADING
    texts = [i.text for s in guide.sections[:-1] for i in s.items]
    assert any("Minimum duration charge of 30 days" in t for t in texts)
    assert all(len(t) <= 242 for t in texts)  # short lines, not whole passages
    assert len(texts) == len(set(texts))  # overlapping passages add no line twice
    numbers = guide.sections[-1].items
    assert numbers and all(re.search(r"\d", i.text) for i in numbers)
    assert any("30 day" in i.text for i in numbers)


def test_guide_json_and_markdown_shapes(maker):
    guide = maker.build("placement groups")
    out = guide.to_json()
    assert set(out) == {"topic", "sections"} and out["topic"] == "placement groups"
    for section in out["sections"]:
        assert set(section) == {"heading", "items"}
        for item in section["items"]:
            assert set(item) == {"text", "passage"}
            assert set(item["passage"]) == {"file", "heading", "start_line", "end_line"}
            assert item["passage"]["start_line"] <= item["passage"]["end_line"]
    assert any("Cluster" in i["text"] for s in out["sections"] for i in s["items"])
    md = guide.to_markdown()
    assert md.startswith("# Study guide: placement groups\n")
    first = guide.sections[0].items[0]
    assert f"- {first.text} — *{first.passage.file}, line" in md


@pytest.mark.parametrize("topic", ["Lightsail", "quantum chromodynamics"])
def test_topic_the_notes_do_not_cover_is_one_line(maker, topic):
    guide = maker.build(topic)
    assert not guide.covered and guide.to_json()["sections"] == []
    assert guide.to_markdown() == f"Your notes don't cover {topic!r}.\n"


def test_cli_guide(corpus_settings, capsys):
    from rag.cli import main

    home = ["--home", str(corpus_settings.home)]
    assert main([*home, "guide", "IAM", "policies", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["topic"] == "IAM policies" and out["sections"]
    assert main([*home, "guide", "Lightsail"]) == 0
    assert capsys.readouterr().out == "Your notes don't cover 'Lightsail'.\n"
    assert main([*home, "guide", "  "]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_quantities_are_numbers_not_names():
    assert quantity("Supports up to 10,000 parts") > quantity("Takes 5 minutes") > 0
    assert quantity("It uses Route 53 for DNS") == 0  # a name with a number
    assert quantity("S3 and EC2 are services") == 0  # digits inside names
    assert quantity("Max 5 TB per object") == 2.5


CELL_NOTES = {
    "biology/cells.md": """# Cell biology

## Mitochondria

Mitochondria are the organelles where the cell turns nutrients into usable energy.

- Mitochondria produce ATP through cellular respiration in their inner membrane.
- A typical human liver cell contains between 1,000 and 2,000 mitochondria.
- Mitochondria carry their own circular DNA, inherited from the mother only.
- See [the lecture slides](https://example.org/slides.pdf)

## Ribosomes

Ribosomes are the molecular machines that build proteins inside every living cell.

- Ribosomes translate messenger RNA into chains of amino acids.
- Each ribosome is made of a large and a small subunit of RNA and protein.
- Ribosomes attached to the rough endoplasmic reticulum make membrane proteins.

```python
ribosome = build(subunits=2)  # code is not a fact line
```
""",
    "history/rome.md": """# Rome

## The Republic

- The Roman Republic lasted from 509 BC until 27 BC, when Augustus became emperor.
- Two consuls were elected every year and could each veto the other.
- The Senate advised the consuls and controlled public finances and foreign policy.
""",
}


@pytest.fixture(scope="module")
def cell_settings(tmp_path_factory):
    """A notes folder on other subjects, indexed with the real model (no AWS anywhere)."""
    from rag.config import Settings
    from rag.index import NoteIndex
    from tests.conftest import MODEL_CACHE

    root = tmp_path_factory.mktemp("other-notes")
    for rel, text in CELL_NOTES.items():
        (root / "notes" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "notes" / rel).write_text(text, encoding="utf-8")
    settings = Settings(home=root / "home",
                        storage={"notes_dir": root / "notes", "model_cache_dir": MODEL_CACHE},
                        answer={"backend": "extractive"})
    NoteIndex(settings).ingest()
    return settings


def test_the_same_code_works_on_notes_about_anything(cell_settings):
    from rag.retrieval import HybridSearch

    guide = GuideMaker(HybridSearch(cell_settings)).build("mitochondria")
    _check_citations(guide, cell_settings.storage.notes_dir)
    texts = [i.text for s in guide.sections for i in s.items]
    assert "Mitochondria produce ATP through cellular respiration in their inner membrane." \
        in texts
    assert not any("slides" in t or "ribosome =" in t for t in texts)  # links, code: no
    assert not any("Roman" in t for t in texts)
    assert guide.sections[0].heading == "Mitochondria"  # the file's wrapping title dropped
    assert guide.sections[0].items[0].passage.heading == "Cell biology > Mitochondria"
    numbers = guide.sections[-1]
    assert numbers.heading == NUMBERS_HEADING
    assert any("between 1,000 and 2,000" in i.text for i in numbers.items)
    rome = GuideMaker(HybridSearch(cell_settings)).build("Roman Republic consuls")
    assert any("509 BC" in i.text for i in rome.sections[-1].items)
    assert not GuideMaker(HybridSearch(cell_settings)).build("photosynthesis").covered


@pytest.mark.slow
@pytest.mark.skipif(not DL_NOTES.is_dir(), reason=f"{DL_NOTES} is not on this machine")
def test_guide_on_the_deep_learning_notes(tmp_path, monkeypatch, capsys):
    """Another student's notes (Markdown course notes with code, formulas and a table of
    contents), indexed from scratch with a temporary STUDYRAG_HOME and notes_dir."""
    from rag.cli import main

    monkeypatch.setenv("STUDYRAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STUDYRAG_STORAGE__NOTES_DIR", str(DL_NOTES))
    assert main(["ingest"]) == 0
    capsys.readouterr()
    from rag.config import load_settings
    from rag.retrieval import HybridSearch

    maker = GuideMaker(HybridSearch(load_settings()))
    guide = maker.build("dropout")
    _check_citations(guide, DL_NOTES)
    texts = [i.text for s in guide.sections for i in s.items]
    assert any("regularization technique" in t for t in texts)
    assert not any(t.startswith("Dropout Regularization") and len(t) < 30 for t in texts)
    assert not maker.build("S3").covered  # only "s3 = 2" in a formula: not about S3
    assert not maker.build("Kubernetes").covered
    assert main(["guide", "batch normalization"]) == 0
    assert capsys.readouterr().out.startswith("# Study guide: batch normalization\n")
