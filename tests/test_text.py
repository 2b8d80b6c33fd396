"""The one text toolkit: sentences, clauses, the negation and limit lexicon."""

import re
from pathlib import Path

from rag.evidence import is_limit, is_negative
from rag.text import LIMIT, NEGATION, clauses, negations, sentences

RAG = Path(__file__).resolve().parents[1] / "rag"


def test_a_sentence_ends_before_a_capital_digit_or_markup():
    assert sentences("Use e.g. a bucket here. Then EFS!  3 AZs? **Yes** v1.2 ok") == [
        "Use e.g. a bucket here.", "Then EFS!", "3 AZs?", "**Yes** v1.2 ok"]


def test_clauses_keep_a_list_whole_so_a_denial_covers_all_of_it():
    assert clauses("S3, EFS and EBS cannot mount it; here the TTL is 5, which is too long") == [
        "S3, EFS and EBS cannot mount it", "here the TTL is 5", "which is too long"]
    # the remedy after a drawback is its own clause
    assert clauses("It adds a lot of overhead which can be simplified by using Parameter Store"
                   ) == ["It adds a lot of overhead", "which can be simplified",
                         "by using Parameter Store"]


def test_fine_clauses_cut_every_comma_colon_and_second_verb():
    assert clauses("Max size: 400 KB, and also scales writes because it is partitioned",
                   fine=True) == ["Max size", "400 KB", "and also scales writes",
                                  "because it is partitioned"]
    assert clauses("It stores items and can be reused", fine=True) == [
        "It stores items", "can be reused"]


def test_negations_count_denials_but_not_negated_bounds():
    assert negations("Items are no larger than 400 KB and cannot exceed 5 GB") == 0
    assert negations("It does not support joins and has no SQL") == 2
    assert negations("Lambda can't run without a role") == 2
    assert NEGATION.search("It isn't encrypted") and not NEGATION.search("Notes on nodes")


def test_limit_lexicon_finds_stated_bounds():
    for text in ("up to 4 KB", "a maximum of 15 minutes", "at least 3 AZs", "limited to 10",
                 "no more than 5 per account", "must not exceed 256 KB"):
        assert LIMIT.search(text), text
    assert not LIMIT.search("It stores objects in buckets")


def test_an_absent_burden_is_a_benefit_not_a_denial():
    assert not is_negative("DAX: Seamless cache for DynamoDB, no application re-write")
    assert not is_negative("Run code without managing servers")
    assert is_negative("It cannot cache writes")
    assert is_negative("It will require a lot of refactoring work")
    assert not is_limit("Spot pricing offers up to 90% off vs On-Demand")  # a bounded gain
    assert not is_limit("Load Balancer by default has at least 1 node per AZ")  # a floor
    assert not is_negative("Serve it from S3 through CloudFront, without routing through the ALB")
    assert is_negative("Snowball: ONLY STORAGE (no compute capability)")
    assert is_negative("Event notifications are delivered to one destination only")
    assert is_limit("CMKs can be used for up to 4KB of data")


def test_no_module_writes_its_own_sentence_splitter():
    """One splitter: a pattern on sentence-ending punctuation lives only in rag/text.py."""
    splitter = re.compile(r"\(\?<=\[[.!?]{3}\]\)")
    offenders = [str(p.relative_to(RAG)) for p in RAG.rglob("*.py")
                 if p.name != "text.py" and splitter.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_the_library_knows_no_subject():
    """What the library knows about a subject is read from the notes, never written in code
    (the check of issue #12: service names of the bundled AWS notes, their scenario file)."""
    subject = re.compile(r"DynamoDB|CloudFront|Lambda@Edge|ElastiCache|exam-scenarios")
    offenders = [str(p.relative_to(RAG)) for p in RAG.rglob("*.py")
                 if subject.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_a_note_line_is_shown_as_a_sentence():
    from rag.text import as_sentence

    assert as_sentence("  Objects can be up to 5 TB:") == "Objects can be up to 5 TB."
    assert as_sentence("Is it encrypted?") == "Is it encrypted?"
    said = 'Your notes say "Objects can be up to 5 TB."'
    assert as_sentence(said) == said  # a quoted sentence ends it: no '."."'
    assert as_sentence('Your notes call it "a bucket"') == 'Your notes call it "a bucket".'
    assert as_sentence("Multipart upload (above 100 MB)") == "Multipart upload (above 100 MB)"
