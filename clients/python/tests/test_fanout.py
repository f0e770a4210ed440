"""A fan-out whose branches each make outputs: every branch keeps all of
its own. Two consumer groups that read one queue derive their outputs'
ids each from its own name (schemas/zfp.md §3), so the broker never takes
one branch's outputs for copies of the other's — whether the branches are
programs, Python workers or gathers."""
import json
import os


ECHO = """import sys
for line in sys.stdin:
    print(line, end="")
    print(flush=True)
"""

ITEMS = 300


def values(path):
    """The bodies a sink wrote, one JSON value a line."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def fanout(branch):
    """A producer counting to ITEMS into `numbers`, read by the actors
    `left` and `right` (branch gives each one's keys), each writing its own
    queue to a sink of its own."""
    text = ("queues\n    numbers\n        max-depth = 50\nactors\n"
            "    numbers\n        kind = producer\n        source = seq:%d\n"
            "        output = numbers\n" % ITEMS)
    for side in ("left", "right"):
        text += "    %s\n%s        input = numbers\n        output = %s.out\n" \
            % (side, branch, side)
        text += ("    %s-sink\n        kind = sink\n        input = %s.out\n"
                 "        target = file:%s.jsonl\n" % (side, side, side))
    return text


def test_two_programs_reading_one_queue_each_keep_their_outputs(tmp_path, runs):
    with open(os.path.join(str(tmp_path), "echo.py"), "w") as f:
        f.write(ECHO)
    run = runs(str(tmp_path), fanout("        kind = processor\n"
                                     "        command = \"/usr/bin/python3 echo.py\"\n"))
    assert run.process.wait(timeout=120) == 0, run.log()
    for side in ("left", "right"):
        got = values(os.path.join(str(tmp_path), side + ".jsonl"))
        assert sorted(got) == list(range(ITEMS)), (side, len(got), run.log())


def test_two_python_workers_reading_one_queue_each_keep_their_outputs(tmp_path, runs):
    run = runs(str(tmp_path), fanout("        kind = exec\n"
                                     "        command = \"/usr/bin/python3 -m zflow worker "
                                     "workers:copy\"\n"))
    assert run.process.wait(timeout=120) == 0, run.log()
    for side in ("left", "right"):
        got = values(os.path.join(str(tmp_path), side + ".jsonl"))
        assert sorted(got) == list(range(ITEMS)), (side, len(got), run.log())


def test_two_gathers_of_one_queue_each_keep_their_results(tmp_path, runs):
    text = ("queues\n    parts\n        max-depth = 50\nactors\n"
            "    parts\n        kind = producer\n        source = seq:%d\n"
            "        group-size = 3\n        output = parts\n" % ITEMS)
    for side in ("left", "right"):
        text += ("    %s\n        kind = gather\n        input = parts\n"
                 "        output = %s.out\n        timeout = 30s\n" % (side, side))
        text += ("    %s-sink\n        kind = sink\n        input = %s.out\n"
                 "        target = file:%s.jsonl\n" % (side, side, side))
    run = runs(str(tmp_path), text)
    assert run.process.wait(timeout=120) == 0, run.log()
    for side in ("left", "right"):
        groups = values(os.path.join(str(tmp_path), side + ".jsonl"))
        assert len(groups) == ITEMS // 3, (side, len(groups), run.log())
        assert sorted(n for group in groups for n in group) == list(range(ITEMS)), side


FAIL_THIRDS = """import json, sys
for line in sys.stdin:
    n = json.loads(line)
    print("!no thirds" if n %% 3 == 0 else line, end="" if n %% 3 else "\\n")
    print(flush=True)
"""


def test_both_branches_hear_of_a_member_each_lost(tmp_path, runs):
    """Each branch fails the same members of the producer's groups: each
    branch's gather gets those members' errors in their places, at once,
    not a gap when its timeout ends the group."""
    with open(os.path.join(str(tmp_path), "thirds.py"), "w") as f:
        f.write(FAIL_THIRDS % ())
    text = ("queues\n    parts\n        max-attempts = 1\nactors\n"
            "    parts\n        kind = producer\n        source = seq:30\n"
            "        group-size = 3\n        output = parts\n")
    for side in ("left", "right"):
        text += ("    %s\n        kind = processor\n        input = parts\n"
                 "        command = \"/usr/bin/python3 thirds.py\"\n"
                 "        output = %s.mid\n" % (side, side))
        text += ("    %s-gather\n        kind = gather\n        input = %s.mid\n"
                 "        output = %s.out\n        timeout = 10m\n" % (side, side, side))
        text += ("    %s-sink\n        kind = sink\n        input = %s.out\n"
                 "        target = file:%s.jsonl\n" % (side, side, side))
    run = runs(str(tmp_path), text)
    assert run.process.wait(timeout=120) in (0, 1), run.log()  # 1: dead letters
    for side in ("left", "right"):
        groups = values(os.path.join(str(tmp_path), side + ".jsonl"))
        assert len(groups) == 10, (side, groups, run.log())
        for group in groups:
            assert group[0].get("dead") == "parts.dead", (side, group)
            assert group[1:] == [group[1], group[1] + 1], (side, group)
