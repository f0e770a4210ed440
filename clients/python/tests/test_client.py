"""The Python client and worker against a real broker: put, result,
cancel, delays, refusals, a worker killed mid-stream, a broker restarted."""
import collections
import os
import signal
import time

import pytest

import zflow
from conftest import Broker, wait_for

TASKS = """pipeline
    results = answers
queues
    tasks
        external = true
        max-attempts = 2
        retry-base = 10ms
        retry-max = 10ms
actors
    double
        kind = exec
        command = "python3 -m zflow worker workers:double"
        input = tasks
        output = answers
"""


@pytest.fixture
def tasks(tmp_path, processes):
    broker = Broker(str(tmp_path), TASKS)
    processes.worker(broker, "workers:double")
    client = zflow.Client(broker.endpoint, events=broker.events)
    yield broker, client
    client.close()
    processes.stop_all()
    broker.stop()


def test_put_then_get(tasks):
    _, client = tasks
    task = client.put("tasks", 21)
    assert len(task.id) == 32
    assert task.get(timeout=20) == 42
    assert client.status(task.id) == "done"
    result = client.result(task.id)
    assert result.state == "done" and result.values == [42]


def test_many_tasks_each_get_their_result(tasks):
    _, client = tasks
    handles = client.put_many("tasks", range(300))
    assert [h.get(timeout=20) for h in handles] == [2 * n for n in range(300)]


def test_a_failing_task_says_why(tasks):
    _, client = tasks
    task = client.put("tasks", "fail")
    with pytest.raises(zflow.TaskFailed) as failed:
        task.get(timeout=20)
    result = failed.value.result
    assert result.state == "dead"
    assert result.error == "RuntimeError: asked to fail"
    assert result.queue == "tasks" and result.attempts == 2


def test_an_unknown_queue_is_refused(tasks):
    _, client = tasks
    with pytest.raises(zflow.Refused) as refused:
        client.put("taskz", 1)
    assert "no queue 'taskz'" in str(refused.value)
    assert refused.value.kind == "no-queue"


def test_delay_priority_and_cancel(tasks):
    _, client = tasks
    start = time.time()
    later = client.put("tasks", 5, delay=0.4, priority=9)
    assert client.status(later.id) in ("delayed", "done") or time.time() - start >= 0.4
    assert later.get(timeout=20) == 10
    assert time.time() - start >= 0.4
    never = client.put("tasks", 6, delay=3600)
    assert client.status(never.id) == "delayed"
    never.cancel()
    assert client.status(never.id) == "cancelled"
    with pytest.raises(zflow.TaskFailed):
        never.get(timeout=5)
    with pytest.raises(ValueError):
        client.put("tasks", 1, priority=12)


def test_get_times_out_while_a_task_waits(tasks):
    _, client = tasks
    task = client.put("tasks", 1, delay=3600)
    with pytest.raises(TimeoutError):
        task.get(timeout=0.2)
    task.cancel()


def test_tap_sees_the_items_put(tasks):
    """A queue's items, bodies decoded; the results queue, which no actor
    reads (its items are kept only as results), is tapped as any other."""
    _, client = tasks
    events = client.tap("data.", timeout=10)
    time.sleep(0.3)  # the subscription reaches the broker first
    client.put("tasks", [9]).get(timeout=20)
    seen = {}
    while len(seen) < 2:
        topic, event = next(events)
        seen[topic] = [item["body"] for item in event["items"]]
    assert seen == {"data.tasks": [[9]], "data.answers": [[9, 9]]}, seen
    events.close()


STREAM = """queues
    numbers
        external = true
actors
    copy
        kind = exec
        command = "python3 -m zflow worker workers:copy"
        input = numbers
        output = copies
    store
        kind = sink
        input = copies
        target = file:out.jsonl
"""


def _lines(directory):
    try:
        with open(os.path.join(directory, "out.jsonl")) as f:
            return [line for line in f.read().splitlines() if line]
    except FileNotFoundError:
        return []


def test_a_worker_killed_mid_stream_loses_and_duplicates_nothing(tmp_path, processes):
    directory = str(tmp_path)
    broker = Broker(directory, STREAM)
    try:
        processes.actor(broker, "store")
        worker = processes.worker(broker, "workers:copy")
        client = zflow.Client(broker.endpoint)
        count = 5000
        client.put_many("numbers", range(count))
        wait_for(lambda: len(_lines(directory)) >= 500, what="500 items at the sink")
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        processes.worker(broker, "workers:copy")  # its items go to the new worker
        wait_for(lambda: len(_lines(directory)) >= count, timeout=60, what="every item")
        time.sleep(0.5)  # anything duplicated would come now
        seen = collections.Counter(int(line) for line in _lines(directory))
        lost = [n for n in range(count) if seen[n] == 0]
        duplicated = [n for n, times in seen.items() if times > 1]
        assert (lost, duplicated) == ([], [])
        client.close()
    finally:
        processes.stop_all()
        broker.stop()


def test_a_broker_restart_is_survived(tmp_path, processes):
    directory = str(tmp_path)
    broker = Broker(directory, TASKS, journal=True)
    try:
        processes.worker(broker, "workers:double")
        client = zflow.Client(broker.endpoint)
        first = client.put_many("tasks", range(50))
        assert [h.get(timeout=20) for h in first] == [2 * n for n in range(50)]
        broker.stop(signal.SIGKILL)
        broker.start()
        # The client and the worker find the new broker by themselves.
        second = client.put_many("tasks", range(50, 100))
        assert [h.get(timeout=30) for h in second] == [2 * n for n in range(50, 100)]
        # What the journal held is still there.
        assert first[7].get(timeout=5) == 14
        client.close()
    finally:
        processes.stop_all()
        broker.stop()


def test_another_pipelines_broker_is_refused_at_once(tmp_path):
    """A client, an async client and a worker of pipeline "canvas" pointed
    at the broker of pipeline "p" fail at once with WrongBroker (a worker:
    exit 2 and one line), never a loop of new sessions."""
    import asyncio
    import subprocess
    import sys
    from conftest import PYTHONPATH

    broker = Broker(str(tmp_path), TASKS)
    try:
        client = zflow.Client(broker.endpoint, pipeline="canvas")
        try:
            with pytest.raises(zflow.WrongBroker, match="runs pipeline 'p', not 'canvas'"):
                client.put("tasks", 1, timeout=20)
            with pytest.raises(zflow.WrongBroker):  # and so is every later call
                client.status("1" * 32)
            assert client.session.sessions == 1
        finally:
            client.close()

        async def connect():
            await zflow.AsyncClient.connect(broker.endpoint, pipeline="canvas", timeout=20)

        with pytest.raises(zflow.WrongBroker, match="runs pipeline 'p', not 'canvas'"):
            asyncio.run(connect())

        worker = subprocess.run(
            [sys.executable, "-m", "zflow", "worker", "workers:double", "--broker",
             broker.endpoint, "--input", "tasks", "--output", "answers", "--group", "double",
             "--pipeline", "canvas"],
            env=dict(os.environ, PYTHONPATH=PYTHONPATH), capture_output=True, text=True,
            timeout=30)
        assert worker.returncode == 2, worker.stderr
        assert "runs pipeline 'p', not 'canvas'" in worker.stderr
        assert len(worker.stderr.strip().splitlines()) == 1, worker.stderr
    finally:
        broker.stop()


def test_a_put_over_max_frame_is_refused_at_once(tmp_path):
    """A body over the broker's max-frame (which WELCOME says) is refused
    before anything of the put is sent, naming its size and the limit; the
    client goes on."""
    import asyncio

    broker = Broker(str(tmp_path), TASKS + "broker\n    max-frame = 4KiB\n")
    try:
        client = zflow.Client(broker.endpoint)
        try:
            with pytest.raises(zflow.Refused, match=r"an item of 5\d\d\d bytes is over the "
                                                    r"broker's max-frame \(4096 bytes\)") as big:
                client.put_many("tasks", [1, "x" * 5000], ids=["1" * 32, "2" * 32], timeout=20)
            assert big.value.kind == "too-big"
            assert client.session.sessions == 1
            assert client.status("1" * 32) == "unknown"  # the one before it was not put either
            assert client.status(client.put("tasks", 2, timeout=20).id) == "queued"
        finally:
            client.close()

        async def put_big():
            async with await zflow.AsyncClient.connect(broker.endpoint, timeout=20) as aclient:
                await aclient.put("tasks", "x" * 5000)

        with pytest.raises(zflow.Refused, match="max-frame"):
            asyncio.run(put_big())
    finally:
        broker.stop()


def test_a_put_to_a_full_queue_says_so_within_its_timeout(tmp_path):
    """A put to a queue at max-depth (no worker takes from it) is refused
    within its timeout, naming the queue and its limit; what was put
    before stays, the refused one is never stored."""
    import asyncio

    broker = Broker(str(tmp_path), TASKS.replace("max-attempts = 2", "max-depth = 2"))
    try:
        client = zflow.Client(broker.endpoint)
        try:
            kept = client.put_many("tasks", [1, 2], timeout=20)
            full_queue = r"queue 'tasks' is full \(max-depth 2\)"
            with pytest.raises(zflow.Refused, match=full_queue) as full:
                client.put("tasks", 3, id="3" * 32, timeout=1.5)
            assert full.value.kind == "full"  # busy: the kind to retry on
            assert client.status("3" * 32) == "unknown"
            assert [client.status(h.id) for h in kept] == ["queued", "queued"]
        finally:
            client.close()

        async def put_one():
            async with await zflow.AsyncClient.connect(broker.endpoint, timeout=20) as aclient:
                await aclient.put("tasks", 4, timeout=1.5)

        with pytest.raises(zflow.Refused, match=full_queue) as full:
            asyncio.run(put_one())
        assert full.value.kind == "full"
    finally:
        broker.stop()


def test_an_item_whose_body_cannot_be_read_is_dead_not_the_worker(tmp_path, processes):
    """One message to intake whose body is a msgpack str that is not UTF-8
    fails its item (dead, with the reason), never the worker: the next
    item is served by the same process."""
    import subprocess

    import zmq
    from conftest import ZFLOW, free_port

    intake = "tcp://127.0.0.1:%d" % free_port()
    broker = Broker(str(tmp_path), TASKS + "broker\n    intake = %s\n" % intake)
    worker = processes.worker(broker, "workers:double")
    client = zflow.Client(broker.endpoint, events=broker.events)
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    try:
        push.connect(intake)
        push.send_multipart([b"tasks", b"\xa3\xff\xfe\xfd"])

        def dead():
            out = subprocess.run([ZFLOW, "status", broker.endpoint], capture_output=True,
                                 text=True, timeout=20).stdout
            row = [line.split() for line in out.splitlines() if line.startswith("tasks ")]
            return row and int(row[0][6]) == 1

        wait_for(dead, what="the unreadable item dead")
        assert client.put("tasks", 21).get(timeout=20) == 42
        assert worker.poll() is None  # the same worker, still up
        log = open(os.path.join(str(tmp_path), "worker.log")).read()
        assert "Traceback" not in log, log
    finally:
        push.close()
        client.close()
        processes.stop_all()
        broker.stop()


def test_new_group_names_do_not_grow_the_broker(tmp_path):
    """10,000 HELLOs, each naming a new client group of a queue holding
    items: past max-groups (1,000) they are refused (ERROR too-big,
    counted in rejected), the broker's memory grows by less than 64 MB,
    and it serves on."""
    import zmq

    from zflow import _zfp

    # Groups left kept for the whole test, however slow the machine: the
    # count below is of max-groups alone, not of what group-expiry freed.
    broker = Broker(str(tmp_path), "broker\n    group-expiry = 1h\n" + TASKS)
    try:
        client = zflow.Client(broker.endpoint)
        client.put_many("tasks", ["x" * 1000] * 100, timeout=20)

        def rss():
            with open("/proc/%d/status" % broker.process.pid) as f:
                return [int(line.split()[1]) for line in f if line.startswith("VmRSS")][0]

        before = rss()
        context = zmq.Context()
        codes = collections.Counter()
        for n in range(10000):
            sock = context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(broker.endpoint)
            sock.send_multipart(_zfp.encode("HELLO", {"version": 1, "name": "g%d" % n,
                                                      "inputs": ["tasks"]}))
            assert sock.poll(10000), "no answer to HELLO %d" % n
            command, header, _ = _zfp.decode(sock.recv_multipart())
            codes[command if command == "WELCOME" else header.get("code")] += 1
            if command == "WELCOME":
                sock.send_multipart(_zfp.encode("BYE", {}))
            sock.close()
        context.term()
        grown = rss() - before
        assert codes == {"WELCOME": 1000, "too-big": 9000}, codes
        # Under AddressSanitizer freed memory stays in its quarantine (256
        # MB): RSS says nothing there; the count of groups above still does.
        if "ASAN_OPTIONS" not in os.environ:
            assert grown < 64 * 1024, "the broker grew by %d KB" % grown
        assert client.status(client.put("tasks", 1, timeout=20).id) == "queued"
        client.close()
    finally:
        broker.stop()


def test_ids_that_are_none_are_refused_at_once(tasks):
    _, client = tasks
    for id in ("0" * 32, bytes(16), "xyz", "0123456789abcdef0123456789abcdeg"):
        for ask in (client.status, client.result, client.cancel):
            with pytest.raises(ValueError, match="is not an id"):
                ask(id)
    with pytest.raises(ValueError, match="not all zero"):
        client.put("tasks", 1, root="0" * 32)


def test_bodies_that_are_not_msgpack_come_as_bytes(tasks):
    """A raw writer may put any bytes (the broker never decodes bodies):
    taps and results give them as bytes, and go on."""
    _, client = tasks
    events = client.tap("data.answers", timeout=10)
    time.sleep(0.3)  # the subscription reaches the broker first
    for raw in (b"\x81\x90\x00", b"not msgpack \xff"):  # a list as a map's key; junk
        items, _ = zflow.client._put_batch("answers", [0], None, None, None, 0, None, None)
        client._put_confirmed(items, [raw], 10)
        _, event = next(events)
        assert [item["body"] for item in event["items"]] == [raw]
        assert client.result(items[0]["id"].hex()).values == [raw]
    events.close()
