"""Python workers running ordinary background jobs under `zflow run`:
long ones run once, async ones many at once, stuck ones bounded by their
time limits, retries when asked, progress seen while they run, failures
with their tracebacks, hooks, and a worker started by hand beside the
pipeline's that shares its work rather than doubling it."""
import os
import re
import subprocess
import sys
import time

import pytest

import zflow
from conftest import PYTHONPATH, Broker, side_effects, wait_for

PY = "/usr/bin/python3 -m zflow worker"


HEARTBEAT = "    heartbeat = 1s\n"


def pipeline(*actors, queue_keys=""):
    """A pipeline of exec actors (name, function, input), each reading an
    external queue, writing the results queue `done`."""
    text = "pipeline\n    results = done\nqueues\n"
    for _, _, queue in actors:
        text += "    %s\n        external = true\n%s" % (queue, queue_keys)
    text += "actors\n"
    for name, function, queue in actors:
        text += ("    %s\n        kind = exec\n        command = \"%s jobs:%s\"\n"
                 "        input = %s\n        output = done\n" % (name, PY, function, queue))
    return text


def test_a_long_task_runs_once_async_or_plain(tmp_path, runs):
    run = runs(tmp_path, pipeline(("a", "long_async", "long"), ("p", "long_plain", "plain")),
               broker=HEARTBEAT)
    with run.client() as client:
        slow_async = client.put("long", {"n": 1, "seconds": 20})
        slow_plain = client.put("plain", {"n": 2, "seconds": 20})
        assert slow_async.get(timeout=60) == 1
        assert slow_plain.get(timeout=60) == 2
    # Heartbeats every second went on while each ran for 20: each ran once.
    assert side_effects(tmp_path, "long_async") == ["1"]
    assert side_effects(tmp_path, "long_plain") == ["2"]


def overlap(tmp_path):
    """The most tasks running at once, from their start and end records."""
    events = [(float(t), 1) for t in (s.split(":")[1] for s in side_effects(tmp_path, "started"))]
    events += [(float(t), -1) for t in (s.split(":")[1] for s in side_effects(tmp_path, "ended"))]
    running = most = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        running += step
        most = max(most, running)
    return most


@pytest.mark.serial
def test_an_async_worker_keeps_its_concurrency_busy(tmp_path, runs):
    # concurrency = 50 is the decorator's: the pipeline does not set it.
    run = runs(tmp_path, pipeline(("m", "two_seconds", "many")))
    with run.client() as client:
        start = time.monotonic()
        handles = [client.put("many", n) for n in range(100)]   # one by one
        assert [h.get(timeout=30) for h in handles] == list(range(100))
        took = time.monotonic() - start
    assert sorted(int(s.split(":")[0]) for s in side_effects(tmp_path, "ended")) == \
        list(range(100))
    assert overlap(tmp_path) == 50   # all of its concurrency, never more
    print("100 two-second tasks, one worker of concurrency 50: %.2f s" % took)
    assert took < 6


def test_time_limits_end_stuck_tasks_with_their_reasons(tmp_path, runs):
    run = runs(tmp_path, pipeline(("s", "stuck_async", "stuck"), ("b", "busy_plain", "busy"),
                                  ("h", "blocked_plain", "blocked"),
                                  queue_keys="        max-attempts = 1\n"))
    with run.client() as client:
        stuck, busy, blocked = (client.put(q, 1) for q in ("stuck", "busy", "blocked"))
        for handle in (stuck, busy):
            with pytest.raises(zflow.TaskFailed) as failed:
                handle.get(timeout=30)
            assert failed.value.result.state == "dead"
            assert "TimeLimit" in failed.value.result.error
            assert "time limit of 1 s" in failed.value.result.error
        with pytest.raises(zflow.TaskFailed) as failed:
            blocked.get(timeout=30)
        assert "hard time limit of 2 s" in failed.value.result.error
        # The worker it ended was started again, and serves.
        wait_for(lambda: len(side_effects(tmp_path, "blocked")) == 1, what="the first run")
        again = client.put("blocked", 2)
        wait_for(lambda: len(side_effects(tmp_path, "blocked")) == 2, timeout=30,
                 what="a new worker taking the next item")
        assert len(set(side_effects(tmp_path, "blocked"))) == 2   # two processes
        assert again.status() in ("delivered", "dead")
    assert "hard time limit" in run.log()


def test_retry_waits_its_countdown_and_the_task_knows_its_context(tmp_path, runs):
    run = runs(tmp_path, pipeline(("l", "retry_later", "later")))
    with run.client() as client:
        task = client.put("later", {}, headers={"user": "ada"})
        value = task.get(timeout=30)
    assert value == {"attempt": 2, "headers": {"user": "ada"}, "queue": "later",
                     "id": task.id, "root": task.id}
    attempts = [s.split(":") for s in side_effects(tmp_path, "retry_later")]
    assert [a for a, _ in attempts] == ["1", "2"]
    assert float(attempts[1][1]) - float(attempts[0][1]) >= 2.0
    assert "the service said 503" in run.log()


def test_progress_is_seen_while_the_task_runs(tmp_path, runs):
    run = runs(tmp_path, pipeline(("r", "with_progress", "report")))
    with run.client() as client:
        task = client.put("report", 1)
        seen = []

        def reported():
            result = client.result(task.id)
            seen.append(result)
            return result.progress is not None
        wait_for(reported, timeout=20, what="the task's progress")
        assert (seen[-1].state, seen[-1].progress, seen[-1].note) == \
            ("delivered", 0.25, "a quarter done")
        open(os.path.join(str(tmp_path), "seen"), "w").close()
        assert task.get(timeout=30) == "finished"


def test_a_failure_keeps_its_traceback(tmp_path, runs):
    run = runs(tmp_path, pipeline(("x", "broken", "broken"),
                                  queue_keys="        max-attempts = 1\n"))
    with run.client() as client:
        with pytest.raises(zflow.TaskFailed) as failed:
            client.put("broken", 5).get(timeout=30)
    result = failed.value.result
    assert result.error == "KeyError: 'no row 5'"
    assert result.detail.startswith("Traceback (most recent call last):")
    assert "in _inner" in result.detail and result.detail.rstrip().endswith(result.error)
    wait_for(lambda: "in _inner" in run.log(), what="the traceback in the worker's log")


def test_hooks_run_once_around_the_work(tmp_path, runs):
    run = runs(tmp_path, pipeline(("k", "uses_session", "hooked")))
    with run.client() as client:
        assert client.put("hooked", 1).get(timeout=30) is True
    assert side_effects(tmp_path, "hooks") == ["start"]
    assert run.stop() == 0
    assert side_effects(tmp_path, "hooks") == ["start", "stop"]


def hand_started(run, *args, **options):
    env = dict(os.environ, PYTHONPATH=PYTHONPATH, JOBS_DIR=run.directory)
    return subprocess.Popen([sys.executable, "-m", "zflow", "worker"] + list(args),
                            env=env, stderr=subprocess.PIPE, text=True, **options)


def test_a_worker_started_by_hand_shares_the_work(tmp_path, runs):
    run = runs(tmp_path, pipeline(("send", "send_email", "sends")))
    worker = hand_started(run, "jobs:send_email", "--broker", run.endpoint)
    try:
        with run.client() as client:
            handles = [client.put("sends", n) for n in range(40)]
            assert sorted(h.get(timeout=30) for h in handles) == list(range(40))
    finally:
        worker.terminate()
        _, err = worker.communicate(timeout=30)
    assert sorted(map(int, side_effects(tmp_path, "sent"))) == list(range(40))  # each once
    assert worker.returncode == 0, err


def test_a_worker_for_a_queue_the_pipeline_lacks_is_refused(tmp_path, runs):
    run = runs(tmp_path, pipeline(("send", "send_email", "sends")))
    run.client().close()
    worker = hand_started(run, "jobs:send_email", "--broker", run.endpoint, "--input", "nosuch")
    _, err = worker.communicate(timeout=30)
    assert worker.returncode == 2
    assert "the pipeline has no queue 'nosuch'" in err


def test_a_worker_with_no_broker_says_so(tmp_path):
    from conftest import free_port
    worker = hand_started(type("R", (), {"directory": str(tmp_path)}), "jobs:send_email",
                          "--broker", "tcp://127.0.0.1:%d" % free_port())
    try:
        line = []
        wait_for(lambda: line.append(worker.stderr.readline()) or "no broker" in line[-1],
                 timeout=15, what="the worker saying it has no broker")
    finally:
        worker.terminate()
        worker.communicate(timeout=30)
    assert "no broker answers at tcp://127.0.0.1:" in line[-1]


GROUPS = """pipeline
    results = answers
queues
    resize
        external = true
        max-attempts = 1
    resize_all
        external = true
        max-attempts = 1
actors
    resize
        kind = exec
        command = "%s jobs:resize"
        input = resize
        output = resized
    resize_all
        kind = exec
        command = "%s jobs:resize --input resize_all --output resized_all"
        input = resize_all
        output = resized_all
    collect
        kind = gather
        input = resized
        output = answers
    all
        kind = gather
        mode = all
        input = resized_all
        output = answers
""" % (PY, PY)


def test_a_group_for_a_gather_is_one_task(tmp_path, runs):
    run = runs(tmp_path, GROUPS)
    with run.client() as client:
        members = [{"n": 1}, {"n": 2}, {"n": 3}]
        assert client.group("resize", members).get(timeout=30) == [2, 4, 6]
        members[1]["fail"] = True
        collected = client.group("resize", members).get(timeout=30)
        assert collected[0] == 2 and collected[2] == 6
        assert collected[1]["error"] == "ValueError: cannot resize 2"
        with pytest.raises(zflow.TaskFailed) as failed:
            client.group("resize_all", members).get(timeout=30)
        assert failed.value.result.state == "dead"
        assert "cannot resize 2" in failed.value.result.error
        empty = client.group("resize", [])
        assert (empty.status(), empty.get()) == ("done", [])
        with pytest.raises(ValueError):
            client.put("resize", {"n": 1}, delay="soon")
        with pytest.raises(ValueError):
            client.put("resize", {"n": 1}, at="24 December")
        later = client.put("resize", {"n": 1}, delay="1h")
        assert later.status() == "delayed"
        assert later.cancel("changed my mind") == "cancelled"
        assert later.result().error == "changed my mind"
        assert later.cancel() == "cancelled"   # over already: nothing changed
        assert client.cancel("ab" * 16) == "unknown"

def test_sigterm_while_the_main_thread_holds_the_lock_stops_the_worker(tmp_path):
    # The main thread takes worker.lock on every turn (what the threads
    # posted); SIGTERM's handler runs on it between two bytecodes, so it
    # may land there. Before, it took the same lock: the worker hung.
    script = ("import os, signal, zflow, jobs\n"
              "worker = zflow.Worker(jobs.send_email, input='sends')\n"
              "signal.signal(signal.SIGTERM, worker.stop)\n"
              "with worker.lock:\n"
              "    os.kill(os.getpid(), signal.SIGTERM)\n"
              "    for _ in range(1000):\n"
              "        pass\n"
              "print(worker.stopping, os.read(worker.wake_read, 16))\n")
    env = dict(os.environ, PYTHONPATH=PYTHONPATH, JOBS_DIR=str(tmp_path))
    try:
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                              text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("the SIGTERM handler waited for a lock its own thread held")
    assert done.stdout.strip() == "True b'\\x00'", done.stderr


def test_the_hard_limit_s_nack_reaches_the_broker_before_the_process_ends(tmp_path,
                                                                             processes,
                                                                             monkeypatch):
    # Each round a worker ends at the hard limit; the NACK it sent just
    # before os._exit must have left the process (else: "worker lost").
    monkeypatch.setenv("JOBS_DIR", str(tmp_path))
    broker = Broker(str(tmp_path), pipeline(("h", "blocked_plain", "blocked"),
                                            queue_keys="        max-attempts = 1\n"))
    try:
        with zflow.Client(broker.endpoint) as client:
            for n in range(4):
                worker = processes.worker(broker, "jobs:blocked_plain")
                with pytest.raises(zflow.TaskFailed) as failed:
                    client.put("blocked", n).get(timeout=30)
                assert "hard time limit of 2 s" in failed.value.result.error
                assert worker.wait(timeout=30) == 70
    finally:
        broker.stop()


def test_an_output_larger_than_a_frame_fails_its_item_not_the_worker(tmp_path, processes,
                                                                      monkeypatch):
    # The broker resets the connection of a frame past max-frame (16 MiB):
    # before, the worker sent that PUT again on every new session and was
    # never heard from again, each item it held "worker lost".
    monkeypatch.setenv("JOBS_DIR", str(tmp_path))
    broker = Broker(str(tmp_path), pipeline(("e", "export", "exports"),
                                            queue_keys="        max-attempts = 1\n"))
    try:
        processes.worker(broker, "jobs:export")
        with zflow.Client(broker.endpoint) as client:
            big = client.put("exports", 17 << 20)
            with pytest.raises(zflow.TaskFailed) as failed:
                big.get(timeout=30)
            assert failed.value.result.error == (
                "output 0 is %d bytes of msgpack, more than the broker takes (max-frame, %d)"
                % ((17 << 20) + 5, 16 << 20))
            assert client.put("exports", 15 << 20).get(timeout=30) == b"x" * (15 << 20)
    finally:
        broker.stop()


def test_a_failing_on_start_hook_is_named_with_its_traceback(tmp_path):
    # Before, its ValueError was taken for a bad command line: exit
    # status 2, one line, no traceback, the hook not named.
    worker = hand_started(type("R", (), {"directory": str(tmp_path)}), "failing_hook:work",
                          "--group", "send", "--broker", "tcp://127.0.0.1:9")
    _, err = worker.communicate(timeout=30)
    assert worker.returncode == 1, err
    assert "@zflow.on_start open_database failed:\nTraceback" in err
    assert 'in open_database\n    int(os.environ.get("DB_POOL_SIZE", "ten"))' in err
    assert err.rstrip().endswith("python -m zflow worker: @zflow.on_start open_database "
                                 "failed: ValueError: invalid literal for int() with base 10: "
                                 "'ten'")


def test_async_tasks_under_a_decorator_or_in_an_object_are_awaited(tmp_path, runs):
    run = runs(tmp_path, pipeline(("w", "wrapped_async", "wrapped"), ("t", "thumbnails", "thumbs"),
                                  ("u", "returns_a_coroutine", "unawaited"),
                                  queue_keys="        max-attempts = 1\n"))
    with run.client() as client:
        assert client.put("wrapped", 21).get(timeout=30) == 42
        assert sorted(client.put("thumbs", "cat").get(timeout=30)) == ["cat-large", "cat-small"]
        with pytest.raises(zflow.TaskFailed) as failed:
            client.put("unawaited", 1).get(timeout=30)
    assert failed.value.result.error.startswith(
        "the function returned coroutine, which nothing awaits: a plain function runs on a "
        "thread; make it async def")
    assert "never awaited" not in run.log()


@pytest.mark.serial
def test_a_call_that_holds_the_gil_is_named_as_the_cause(tmp_path, processes):
    """A task's call into C that keeps the GIL past the broker's liveness
    stops the worker's heartbeats: the broker takes the item back, and
    drops the ACK that comes on the worker's next session (unless it gave
    the item to that session first). The worker says so and why, not that
    the broker is gone; delivered again, the item is answered at once:
    done, its function run once."""
    broker = Broker(str(tmp_path), "broker\n    heartbeat = 100ms\n" + pipeline(
        ("hold_the_gil", "hold_the_gil", "gil")))
    log = os.path.join(str(tmp_path), "worker.log")
    env = dict(os.environ, PYTHONPATH=PYTHONPATH, JOBS_DIR=str(tmp_path))
    processes.started.append(subprocess.Popen(
        ["/usr/bin/python3", "-m", "zflow", "worker", "jobs:hold_the_gil", "--broker",
         broker.endpoint],
        env=env, stderr=open(log, "w")))
    try:
        with zflow.Client(broker.endpoint, timeout=30) as client:
            # 2 s of the GIL held, where the broker waits 0.3 s (100 ms x 3).
            handle = client.put("gil", {"n": 7, "seconds": 2})
            assert handle.get(timeout=60) == 7
            assert client.result(handle.id).state == "done"
        with open(log) as f:
            text = f.read()
        assert re.search(r"this process was silent for \d+\.\d s, as it did not run \(a call "
                         r"that held Python's GIL, or the process was stopped\): past the 0\.3 s "
                         r"the broker waits", text), text
        assert "no broker answers" not in text, text
        assert side_effects(tmp_path, "hold_the_gil") == ["1"]
    finally:
        broker.stop()
