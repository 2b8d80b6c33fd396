"""Time spans, data sizes and counts in one unit, and a note's bound checked against a need."""

from rag.quantities import check_bound, quantities


def test_quantities_are_read_in_seconds_bytes_and_things():
    got = {(q.text, q.kind, q.base) for q in quantities(
        "about two hours, a 15-minute limit, 900 seconds, 4KB, 1.5 GiB and one day")}
    assert got == {("two hours", "time", 7200.0), ("15-minute", "time", 900.0),
                   ("900 seconds", "time", 900.0), ("4KB", "size", 4000.0),
                   ("1.5 GiB", "size", 1.5 * 1024 ** 3), ("one day", "time", 86400.0)}
    counted = {(q.kind, q.value) for q in quantities("needs ten read replicas; Up to 5 Read "
                                                     "Replicas; 15 different replicas")}
    assert counted == {("count:replica", 10.0), ("count:replica", 5.0),
                       ("count:replica", 15.0)}
    assert quantities("one of the buckets; 5 or more times") == []


def test_a_maximum_is_broken_by_more_and_a_minimum_by_less():
    hours = quantities("a job of about two hours")
    broken = check_bound(hours, "Max execution time 15 minutes")
    assert broken.broken and broken.bound.text == "15 minutes"
    assert "a limit of 15 minutes" in broken.describe()
    kept = check_bound(hours, "Runs for up to 6 hours")
    assert not kept.broken and "within the limit of 6 hours" in kept.describe()
    assert check_bound(hours, "Functions take 15 minutes to deploy") is None  # not a bound
    week = quantities("objects are kept for 7 days")
    floor = check_bound(week, "Minimum storage duration of 30 days")
    assert floor.floor and floor.broken and "a minimum of 30 days" in floor.describe()
    images = quantities("images of 10 MB")
    assert check_bound(images, "up to 4 KB of data").broken
    assert not check_bound(images, "works on data larger than 4KB in size").broken
    assert check_bound(images, "up to 2 hours") is None  # another kind
    assert check_bound(quantities("ten read replicas"), "Up to 5 Read Replicas").broken


def test_the_kind_of_figure_a_question_asks_for():
    from rag.quantities import asked_kinds, gives_kind

    assert asked_kinds("How long does a stream keep records before they expire?") == {"time"}
    assert asked_kinds("Roughly how big can one thing I store be?") == {"size"}
    assert asked_kinds("How many copies can I hang off one database?") == {"count"}
    assert asked_kinds("Why does depth make gradients explode?") == set()
    assert gives_kind("Default retention is 24 hours, up to 7 days", {"time"})
    assert not gives_kind("Objects can be up to 5 TB", {"time"})
    assert gives_kind("Up to 5 read replicas per database", {"count"})
    assert not gives_kind("Replicas are asynchronous", {"count"})


def test_only_a_question_that_asks_for_a_figure_demands_one():
    """Abstention refuses a figure question whose figure no close line states; naming a thing
    whose value is a figure ("the TTL attribute") asks for no figure."""
    from rag.quantities import demanded_kinds

    assert demanded_kinds("What format must the DynamoDB TTL attribute use?") == set()
    assert demanded_kinds("How long until an unread SQS message disappears?") == {"time"}
    assert demanded_kinds("What's the biggest single file EFS will store?") == {"size"}
    assert demanded_kinds("How many TLS certificates can one listener hold?") == {"count"}
