"""What the broker reports of a task to the Python client, as a task worker
makes it (the worker here a raw ZFP session, as any worker is to the
broker): a failure's detail beside its reason, a running task's
progress."""
import time

import pytest
import zmq

import zflow
from zflow import _zfp
from conftest import Broker

TASKS = """pipeline
    results = answers
queues
    tasks
        external = true
        max-attempts = 2
        retry-base = 10ms
        retry-max = 10ms
actors
    work
        kind = exec
        command = /bin/true
        input = tasks
        output = answers
"""


class RawWorker:
    """A worker of a queue speaking ZFP itself: HELLO, CREDIT, then what a
    test says."""

    def __init__(self, endpoint, name, queue, credit=1):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.send("HELLO", {"version": 1, "name": name, "inputs": [queue]})
        self.welcome = self.recv("WELCOME")
        self.send("CREDIT", {"credit": credit})

    def send(self, command, header):
        self.sock.send_multipart(_zfp.encode(command, header))

    def recv(self, want, timeout=10):
        """The header (and bodies) of the next message of command want."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.sock.poll(100):
                continue
            command, header, bodies = _zfp.decode(self.sock.recv_multipart())
            if command == "PING":
                self.send("PONG", {})
            elif command == want:
                return header if want != "DELIVER" else (header, bodies)
            elif command == "ERROR":
                raise AssertionError("ERROR %s: %s" % (header["code"], header["reason"]))
        raise AssertionError("no %s within %s s" % (want, timeout))

    def barrier(self, id):
        """The REPORT on id: once it comes, what this session sent before
        is handled (the broker takes a session's messages in order)."""
        self.send("STATUS", {"id": bytes.fromhex(id)})
        return self.recv("REPORT")

    def close(self):
        self.sock.close()


@pytest.fixture
def broker(tmp_path):
    b = Broker(str(tmp_path), TASKS)
    yield b
    b.stop()


def test_a_tracebacks_detail_reaches_the_result(broker):
    client = zflow.Client(broker.endpoint)
    worker = RawWorker(broker.endpoint, "work", "tasks")
    try:
        task = client.put("tasks", {"n": 1})
        header, _ = worker.recv("DELIVER")
        [item] = header["items"]
        assert item["id"].hex() == task.id
        first = 'Traceback (most recent call last):\n  File "t.py", line 1\nKeyError: 1'
        worker.send("NACK", {"id": item["id"], "reason": "KeyError: 1", "detail": first})
        worker.barrier(task.id)
        result = client.result(task.id)  # its backoff is 0 to 10 ms: maybe delivered again
        assert result.state in ("retrying", "delivered")
        assert (result.error, result.detail) == ("KeyError: 1", first)
        header, _ = worker.recv("DELIVER")
        last = 'Traceback (most recent call last):\n  File "t.py", line 2\nKeyError: 2'
        worker.send("NACK", {"id": item["id"], "reason": "KeyError: 2", "detail": last})
        with pytest.raises(zflow.TaskFailed) as failed:
            task.get(timeout=10)
        result = failed.value.result
        assert (result.state, result.error, result.attempts) == ("dead", "KeyError: 2", 2)
        assert result.detail == last
    finally:
        worker.close()
        client.close()


def test_a_running_tasks_progress_is_read(broker):
    client = zflow.Client(broker.endpoint)
    worker = RawWorker(broker.endpoint, "work", "tasks")
    try:
        task = client.put("tasks", "album")
        header, _ = worker.recv("DELIVER")
        [item] = header["items"]
        assert client.result(task.id).progress is None   # none reported yet
        worker.send("PROGRESS", {"id": item["id"], "progress": 420, "note": "resizing images"})
        worker.barrier(task.id)
        result = client.result(task.id)
        assert (result.state, result.progress, result.note) == (
            "delivered", 0.42, "resizing images")
        worker.send("PROGRESS", {"id": item["id"], "progress": 1001})
        with pytest.raises(AssertionError, match="ERROR value: PROGRESS: progress 1001"):
            worker.recv("REPORT")
        worker.send("ACK", {"ids": [item["id"]]})
        worker.barrier(task.id)
        result = client.result(task.id)
        assert (result.state, result.progress, result.note) == ("done", None, "")
    finally:
        worker.close()
        client.close()
