"""Time spans and data sizes in one unit, and a note's bound that a scenario breaks."""

from rag.quantities import conflict, quantities


def test_quantities_are_read_in_seconds_and_bytes():
    got = {(q.text, q.kind, q.base) for q in quantities(
        "about two hours, a 15-minute limit, 900 seconds, 4KB, 1.5 GiB and one day")}
    assert got == {("two hours", "time", 7200.0), ("15-minute", "time", 900.0),
                   ("900 seconds", "time", 900.0), ("4KB", "size", 4000.0),
                   ("1.5 GiB", "size", 1.5 * 1024 ** 3), ("one day", "time", 86400.0)}
    assert quantities("one of the buckets; a second replica; 3 AZs") == []


def test_a_maximum_is_broken_by_more_and_a_minimum_by_less():
    hours = quantities("a job of about two hours")
    assert conflict(hours, "Max execution time 15 minutes").bound.text == "15 minutes"
    assert conflict(hours, "Runs for up to 6 hours") is None
    assert conflict(hours, "Functions take 15 minutes to deploy") is None  # not a bound
    week = quantities("objects are kept for 7 days")
    found = conflict(week, "Minimum storage duration of 30 days")
    assert found.floor and "a minimum of 30 days" in found.describe()
    assert conflict(quantities("images of 10 MB"), "up to 4 KB of data").needed.text == "10 MB"
    assert conflict(quantities("images of 10 MB"), "up to 2 hours") is None  # other kind
