"""The HTTP door of a running service: requests that wait for the broker
(a put for its confirm, a result for its end) are parked, never served one
by one, so none holds up another; how many may wait is bounded."""
import json
import os
import socket
import threading
import urllib.error
import urllib.request

from conftest import GATED, free_port, http, wait_for

def healthy(address):
    """True once the gateway answers /health with 200."""
    try:
        return urllib.request.urlopen("http://%s/health" % address, timeout=5).status == 200
    except (urllib.error.URLError, ConnectionError):
        return False


class Call(threading.Thread):
    """One request on a thread of its own: its answer once it came."""

    def __init__(self, address, method, path, body=None):
        super().__init__(daemon=True)
        self.args = (address, method, path, body)
        self.answer = None
        self.start()

    def run(self):
        self.answer = http(*self.args)


def test_waiting_requests_hold_up_no_other(tmp_path, runs):
    address = "127.0.0.1:%d" % free_port()
    run = runs(tmp_path, GATED, "--no-journal",
               broker="    metrics = %s\n    api = true\n    api-put-wait = 2s\n"
               "    api-max-waiting = 8\n" % address)
    wait_for(lambda: healthy(address), what="the gateway")
    # Two tasks held by their worker until the test releases them: the
    # gate queue is full (one in flight, one waiting).
    held = [http(address, "POST", "/queues/gate", b"%d" % n)[2]["id"] for n in range(2)]
    waiter = Call(address, "GET", "/results/%s?wait=30s" % held[0])

    # While it waits: 50 tasks put and their results read, one by one.
    for n in range(50):
        status, _, put = http(address, "POST", "/queues/poison", json.dumps({"n": n}).encode())
        assert status == 200, put
        status, _, result = http(address, "GET", "/results/%s?wait=20s" % put["id"])
        assert (status, result["state"], result["results"]) == (200, "done", [{"n": n}]), result
    assert waiter.answer is None  # still waiting: its task is held

    # A put to the full queue waits for room (2 s): puts to another queue
    # are answered meanwhile, then it is refused with Retry-After.
    full = Call(address, "POST", "/queues/gate", b"3")
    for n in range(10):
        status, _, put = http(address, "POST", "/queues/poison", b"%d" % n)
        assert status == 200, put
    assert full.answer is None
    full.join(timeout=20)
    status, headers, answer = full.answer
    assert status == 503 and "queue 'gate' is full (max-depth 2)" in answer["error"], answer
    assert headers["Retry-After"] == "2", dict(headers)

    # At most 8 wait: the 9th is told to come back; /health is not held.
    waiters = [waiter] + [Call(address, "GET", "/results/%s?wait=30s" % held[n % 2])
                          for n in range(7)]
    wait_for(lambda: "\nzflow_api_waiting 8\n" in urllib.request.urlopen(
        "http://%s/metrics" % address, timeout=5).read().decode(), what="8 parked")
    status, headers, answer = http(address, "GET", "/results/%s" % held[0])
    assert status == 503 and "api-max-waiting" in answer["error"], answer
    assert headers["Retry-After"] == "1", dict(headers)
    assert healthy(address)
    assert "\nzflow_api_turned_away_total 1\n" in urllib.request.urlopen(
        "http://%s/metrics" % address, timeout=5).read().decode()

    # Released: every waiter has its answer.
    open(os.path.join(str(tmp_path), "released"), "w").close()
    for w in waiters:
        w.join(timeout=30)
        status, _, result = w.answer
        assert (status, result["state"]) == (200, "done"), result
    assert run.stop() == 0


def test_bad_requests_are_answered_at_once(tmp_path, runs):
    address = "127.0.0.1:%d" % free_port()
    run = runs(tmp_path, GATED, "--no-journal",
               broker="    metrics = %s\n    api = true\n" % address)
    wait_for(lambda: healthy(address), what="the gateway")
    # An id of zeros, or no id: 400, not a wait.
    for path in ("/results/%s?wait=30s" % ("0" * 32), "/messages/%s" % ("0" * 32),
                 "/results/xyz"):
        status, _, answer = http(address, "GET", path)
        assert status == 400 and "is not an id" in answer["error"], (path, answer)
    # A queue that does not exist, or whose name is not UTF-8 text: 404.
    for path in ("/queues/nosuch", "/queues/%FF%FE"):
        status, _, answer = http(address, "POST", path, b"1")
        assert status == 404 and "no queue" in answer["error"], (path, status, answer)
    # A body said to be 100 MB: 413 before a byte of it is read.
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /queues/poison HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 100000000\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 413")
    # 100 puts at once, each answered with its own id; all of them done.
    calls = [Call(address, "POST", "/queues/poison", b"%d" % n) for n in range(100)]
    ids = []
    for call in calls:
        call.join(timeout=30)
        status, _, answer = call.answer
        assert status == 200, answer
        ids.append(answer["id"])
    assert len(set(ids)) == 100
    for n, id in enumerate(ids):
        status, _, result = http(address, "GET", "/results/%s?wait=20s" % id)
        assert result["results"] == [n], result
    assert run.stop() == 0
