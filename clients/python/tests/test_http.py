"""The HTTP door of a running service: requests that wait for the broker
(a put for its confirm, a result for its end) are parked, never served one
by one, so none holds up another; how many may wait is bounded."""
import asyncio
import json
import os
import resource
import select
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import GATED, free_port, http, wait_for

def healthy(address):
    """True once the gateway answers /health with 200."""
    try:
        return urllib.request.urlopen("http://%s/health" % address, timeout=5).status == 200
    except (urllib.error.URLError, ConnectionError):
        return False


def serve(runs, directory, *args, keys="", config=GATED, what="the gateway"):
    """A service (GATED by default) with the HTTP API on a free port of
    loopback, and the broker keys given: (run, address) once /health
    answers."""
    address = "127.0.0.1:%d" % free_port()
    run = runs(directory, config, *args,
               broker="    metrics = %s\n    api = true\n%s" % (address, keys))
    wait_for(lambda: healthy(address), what=what)
    return run, address


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
    run, address = serve(runs, tmp_path, "--no-journal",
                         keys="    api-put-wait = 2s\n    api-max-waiting = 8\n")
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


def test_a_client_keeps_its_connection(tmp_path, runs):
    """A web app's requests, one after another on one keep-alive
    connection, as its HTTP library sends them: none is answered with the
    connection closed, so none pays for a new one."""
    import http.client
    run, address = serve(runs, tmp_path, "--no-journal")
    host, port = address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    where = []

    def ask(method, path, body=None):
        connection.request(method, path, body=body)
        answer = connection.getresponse()
        data = answer.read()
        assert not answer.will_close, (method, path, dict(answer.headers))
        where.append(connection.sock.getsockname())
        assert answer.status == 200, (method, path, data)
        return json.loads(data) if data[:1] in (b"[", b"{") else data
    try:
        assert ask("GET", "/health") == b"ok\n"
        assert b"zflow_api_waiting" in ask("GET", "/metrics")
        put = ask("POST", "/queues/poison", b'{"n": 1}')
        assert "poison" in [queue["name"] for queue in ask("GET", "/queues")]
        result = ask("GET", "/results/%s?wait=20s" % put["id"])
        assert (result["state"], result["results"]) == ("done", [{"n": 1}]), result
        assert ask("GET", "/messages/%s" % put["id"])["state"] == "done"
        assert ask("GET", "/health") == b"ok\n"
    finally:
        connection.close()
    assert len(where) == 7 and len(set(where)) == 1  # one connection throughout
    # A GET or DELETE that sends a body anyway is answered, its body unread.
    for method, path in [("GET", "/queues"), ("GET", "/health"),
                         ("DELETE", "/messages/%s" % put["id"])]:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request(method, path, body=b"a body it should not have")
        answer = connection.getresponse()
        assert answer.status == 200, (method, path, answer.status, answer.read())
        connection.close()


def test_bad_requests_are_answered_at_once(tmp_path, runs):
    run, address = serve(runs, tmp_path, "--no-journal")
    # An id of zeros, or no id: 400, not a wait.
    for path in ("/results/%s?wait=30s" % ("0" * 32), "/messages/%s" % ("0" * 32),
                 "/results/xyz"):
        status, _, answer = http(address, "GET", path)
        assert status == 400 and "is not an id" in answer["error"], (path, answer)
    # A queue that does not exist, or whose name is not UTF-8 text: 404.
    for path in ("/queues/nosuch", "/queues/%FF%FE", "/queues/poison%00junk"):
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


def test_an_item_that_outgrows_max_frame_is_too_large(tmp_path, runs):
    """A JSON body under max-frame whose item packs to more (each 1e5 is
    4 bytes of JSON, 9 of msgpack) is refused 413, as a body over it is;
    the next put goes. In a batch, each refused item's kind is said: the
    too large one is not worth putting again, the one a full queue
    refused is."""
    run, address = serve(runs, tmp_path, "--no-journal", keys="    max-frame = 4KiB\n")
    floats = ("[" + ",".join(["1e5"] * 900) + "]").encode()
    assert len(floats) < 4096
    status, _, answer = http(address, "POST", "/queues/poison", floats)
    assert status == 413 and "over the broker's max-frame (4096 bytes)" in answer["error"], answer
    status, _, answer = http(address, "POST", "/queues/poison", b"[1, 2]")
    assert status == 200 and answer["id"], answer
    # The gate queue has room for two: the too large one, two, then one
    # too many. The status is the first refusal's.
    status, _, answer = http(address, "POST", "/queues/gate", floats + b"\n1\n2\n3\n",
                             {"Content-Type": "application/x-ndjson"})
    assert status == 413, answer
    assert answer["refused"] == [0, 3] and answer["kinds"] == ["too-big", "full"], answer
    assert len(set(answer["ids"])) == 4 and "0" * 32 not in answer["ids"], answer
    assert http(address, "GET", "/messages/%s" % answer["ids"][0])[0] == 404
    open(os.path.join(str(tmp_path), "released"), "w").close()
    assert run.stop() == 0


def test_batches_and_envelopes(tmp_path, runs):
    # Room for all 10,000 at once, however fast the worker takes them.
    config = GATED.replace("    poison\n", "    poison\n        max-depth = 20000\n", 1)
    run, address = serve(runs, tmp_path, config=config)
    # 10,000 items as NDJSON, one request: every id back, in order.
    lines = b"".join(b'{"n": %d}\n' % n for n in range(10000))
    status, _, answer = http(address, "POST", "/queues/poison", lines,
                             {"Content-Type": "application/x-ndjson"})
    assert status == 200 and len(set(answer["ids"])) == 10000, (status, answer.get("error"))
    for n in (0, 4999, 9999):
        status, _, result = http(address, "GET", "/results/%s?wait=30s" % answer["ids"][n])
        assert result["results"] == [{"n": n}], result
    wait_for(lambda: {q["name"]: q["ack"] for q in http(address, "GET", "/queues")[2]}["poison"]
             == 10000, timeout=60, what="10,000 done")

    # A JSON array with ?batch=1, each an envelope (Zflow-Envelope: 1).
    envelopes = [{"body": {"k": 1}, "priority": 9},
                 {"body": {"k": 2}, "headers": {"tenant": "a"}},
                 {"body": {"k": 3}, "delay_ms": 300}]
    status, _, answer = http(address, "POST", "/queues/poison?batch=1",
                             json.dumps(envelopes).encode(), {"Zflow-Envelope": "1"})
    assert status == 200 and len(answer["ids"]) == 3, answer
    for k, id in enumerate(answer["ids"]):
        result = http(address, "GET", "/results/%s?wait=20s" % id)[2]
        assert result["results"] == [{"k": k + 1}], result
    # Without the header, a body that looks like an envelope is the item.
    status, _, put = http(address, "POST", "/queues/poison", b'{"body": 5, "priority": 1}')
    result = http(address, "GET", "/results/%s?wait=20s" % put["id"])[2]
    assert result["results"] == [{"body": 5, "priority": 1}], result

    # Wrong input is refused whole, naming where; nothing of it is put.
    before = {q["name"]: q["put"] for q in http(address, "GET", "/queues")[2]}["poison"]
    for body, headers, wrong in (
            (b'1\n2\n{"n": \n', {"Content-Type": "application/x-ndjson"}, "line 3 is not JSON"),
            (b"\n \n", {"Content-Type": "application/x-ndjson"}, "no items"),
            (b"1\n" * 10001, {"Content-Type": "application/x-ndjson"},
             "10001 items in one request; at most 10000"),
            (b"1\n2\x00\n{bad\n", {"Content-Type": "application/x-ndjson"},
             "line 2 is not JSON"),
            (b'{"body": 1, "delay_ms": 9223372036854775807}', {"Zflow-Envelope": "1"},
             "the item is not an envelope"),
            (b'{"n": 1}', {}, None),
            (b'[{"body": 1}, {"n": 2}]', {"Zflow-Envelope": "1"}, "item 2 is not an envelope"),
            (b'{"n": 2}', {"Zflow-Envelope": "true"}, "the item is not an envelope")):
        path = "/queues/poison?batch=1" if wrong is None else "/queues/poison"
        if b"[" in body[:1]:
            path = "/queues/poison?batch=1"
        status, _, answer = http(address, "POST", path, body, headers)
        assert status == 400, (body, answer)
        assert (wrong or "takes a JSON array") in answer["error"], (body, answer)
    after = {q["name"]: q["put"] for q in http(address, "GET", "/queues")[2]}["poison"]
    assert after == before

    # A batch to a queue with room for two of three: the ids of all three,
    # and which one was refused, to put again later.
    status, headers, answer = http(address, "POST", "/queues/gate?batch=1", b"[1, 2, 3]")
    assert status == 503 and answer["refused"] == [2] and answer["kinds"] == ["full"], answer
    assert "is full (max-depth 2)" in answer["error"] and len(answer["ids"]) == 3, answer
    assert headers["Retry-After"] == "1", dict(headers)
    open(os.path.join(str(tmp_path), "released"), "w").close()
    for id in answer["ids"][:2]:
        assert http(address, "GET", "/results/%s?wait=20s" % id)[2]["state"] == "done"
    assert http(address, "GET", "/messages/%s" % answer["ids"][2])[:3:2] == (404, {
        "id": answer["ids"][2], "state": "unknown"})
    assert run.stop() == 0


def test_a_running_task_cancelled_reads_cancelled_at_once(tmp_path, runs):
    run, address = serve(runs, tmp_path)
    id = http(address, "POST", "/queues/gate", b"1")[2]["id"]
    wait_for(lambda: http(address, "GET", "/messages/%s" % id)[2]["state"] == "delivered",
             what="the task held by its worker")
    waiter = Call(address, "GET", "/results/%s?wait=60s" % id)
    status, _, answer = http(address, "DELETE", "/messages/%s" % id)
    assert (status, answer["state"]) == (200, "cancelled"), answer
    # Its worker still holds it; who asks or waits hears "cancelled" now.
    waiter.join(timeout=20)
    status, _, result = waiter.answer
    assert (result["state"], result["error"]) == ("cancelled", "cancelled over HTTP"), result
    assert http(address, "GET", "/messages/%s" % id)[2]["state"] == "cancelled"
    # The cancel is kept: the run killed and started again on its journal,
    # the task still reads cancelled and does not run again.
    run.process.kill()
    run.process.wait()
    run, address = serve(runs, tmp_path, what="the gateway again")
    status, _, result = http(address, "GET", "/results/%s" % id)
    assert (result["state"], result["error"]) == ("cancelled", "cancelled over HTTP"), result
    # Released: nothing of it is left to run, and it stays cancelled.
    open(os.path.join(str(tmp_path), "released"), "w").close()
    time.sleep(0.5)
    queues = {q["name"]: q for q in http(address, "GET", "/queues")[2]}
    assert (queues["gate"]["depth"], queues["gate"]["inflight"]) == (0, 0), queues["gate"]
    status, _, result = http(address, "GET", "/results/%s" % id)
    assert (result["state"], result["results"]) == ("cancelled", []), result
    assert run.stop() == 0


class Events:
    """GET /events read as a plain HTTP/1.0 client reads it (no chunks):
    the JSON of each `data:` line, as it comes."""

    def __init__(self, address, query, headers=None):
        host, port = address.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        lines = ["GET /events?%s HTTP/1.0" % query, "Host: %s" % address]
        lines += ["%s: %s" % item for item in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buffer = b""
        head = b""
        while b"\r\n\r\n" not in head:
            data = self.sock.recv(65536)
            if not data:
                break
            head += data
        head, _, self.buffer = head.partition(b"\r\n\r\n")
        status_line, *fields = head.decode().split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = dict(field.split(": ", 1) for field in fields)

    def next(self, timeout=30):
        """The next event, or None if none came within timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            line, newline, rest = self.buffer.partition(b"\n")
            if newline:
                self.buffer = rest
                if line.startswith(b"data: "):
                    return json.loads(line[6:])
                continue
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                return None
            data = self.sock.recv(1 << 20)
            if not data:
                raise EOFError("the stream ended")
            self.buffer += data

    def close(self):
        self.sock.close()


def test_events_stream_to_a_browser(tmp_path, runs):
    run, address = serve(runs, tmp_path, "--no-journal")
    for query in ("", "?topic=", "?topic=,,"):  # an empty entry is none: * is every topic
        status, _, answer = http(address, "GET", "/events" + query)
        assert status == 400 and "needs ?topic=PREFIX" in answer["error"], answer
    events = Events(address, "topic=data.poison,data.done")
    assert events.status == 200 and events.headers["Content-Type"] == "text/event-stream"
    time.sleep(0.3)  # subscribed before the puts
    put = [http(address, "POST", "/queues/poison", json.dumps({"n": n}).encode())[2]["id"]
           for n in range(3)]
    seen = [events.next() for _ in range(6)]
    assert [(e["topic"], e["body"]) for e in seen if e["topic"] == "data.poison"] == \
        [("data.poison", {"n": n}) for n in range(3)], seen
    assert sorted(e["body"]["n"] for e in seen if e["topic"] == "data.done") == [0, 1, 2]
    assert [e["id"] for e in seen if e["topic"] == "data.poison"] == put

    # A reader that stops reading: the gateway holds what it may, drops
    # the rest, and says how many when the reader reads again. Every item
    # is shown or counted.
    slow = Events(address, "topic=data.poison")
    time.sleep(0.3)
    big = "x" * 16000
    with run.client() as client:
        client.put_many("poison", [big] * 2000)
    events.close()
    shown = dropped = missed = 0
    marker = False
    deadline = time.monotonic() + 90
    while not marker and time.monotonic() < deadline:
        event = slow.next(timeout=1)
        if event is None:  # read all it had: one more item, to hear the gap
            http(address, "POST", "/queues/poison", b'"marker"')
            continue
        if event["topic"] == "tap.gap":
            dropped += event.get("dropped", 0)
            missed += event.get("missed", 0)
        elif event["body"] == "marker":
            marker = True
        else:
            shown += 1
    assert marker and dropped > 0, (shown, dropped, missed)
    assert shown + dropped + missed == 2000, (shown, dropped, missed)
    print("2,000 items of 16 KB to a stalled reader: %d shown, %d dropped by the gateway, "
          "%d missed" % (shown, dropped, missed))
    slow.close()
    # A stream open when the run stops ends, and the run stops.
    stats = Events(address, "topic=stats")
    assert stats.next()["topic"] == "stats"
    assert run.stop() == 0
    with pytest.raises(EOFError):
        while stats.next(timeout=10):
            pass


def test_a_thousand_waiters_beside_puts(tmp_path, runs):
    """1,000 GET /results?wait parked at once on held tasks while puts and
    their results come and go: every put is answered, no waiter before
    its task ends, and every waiter once it does."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2500:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    run, address = serve(runs, tmp_path, "--no-journal",
                         keys="    http-max-per-address = 2000\n    http-max-connections = 3000\n")
    held = [http(address, "POST", "/queues/gate", b"%d" % n)[2]["id"] for n in range(2)]
    host, port = address.split(":")

    async def wait(id):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /results/%s?wait=60s HTTP/1.0\r\nHost: x\r\n\r\n" % id.encode())
        await writer.drain()
        answer = await reader.read()
        writer.close()
        return time.monotonic(), json.loads(answer.split(b"\r\n\r\n", 1)[1])

    async def scenario():
        waiters = [asyncio.ensure_future(wait(held[n % 2])) for n in range(1000)]
        await asyncio.to_thread(wait_for, lambda: "\nzflow_api_waiting 1000\n" in
                                urllib.request.urlopen("http://%s/metrics" % address,
                                                       timeout=5).read().decode(),
                                60, "1,000 parked")
        # Puts and their results, one after another, while they wait.
        for n in range(100):
            status, _, put = await asyncio.to_thread(
                http, address, "POST", "/queues/poison", json.dumps({"n": n}).encode())
            assert status == 200, put
            _, _, result = await asyncio.to_thread(
                http, address, "GET", "/results/%s?wait=20s" % put["id"])
            assert result["results"] == [{"n": n}], result
        assert not any(w.done() for w in waiters)
        released = time.monotonic()
        open(os.path.join(str(tmp_path), "released"), "w").close()
        answers = await asyncio.wait_for(asyncio.gather(*waiters), 60)
        assert all(answer["state"] == "done" for _, answer in answers), answers[:3]
        late = sorted(at - released for at, _ in answers)
        print("1,000 waiters answered %.0f to %.0f ms after their tasks were released"
              % (late[0] * 1000, late[-1] * 1000))

    asyncio.run(scenario())
    assert run.stop() == 0


def test_clients_that_go_and_a_stop_in_the_middle(tmp_path, runs):
    """Parked requests whose clients went away are let go (a suspended
    connection is not read: the gateway looks); a run stopped while
    requests and streams keep coming ends, status 0."""
    run, address = serve(runs, tmp_path, "--no-journal", "--grace", "1s",
                         keys="    api-put-wait = 60s\n")
    held = http(address, "POST", "/queues/gate", b"1")[2]["id"]
    host, port = address.split(":")

    def waiting():
        text = urllib.request.urlopen("http://%s/metrics" % address, timeout=5).read().decode()
        return int(text.split("\nzflow_api_waiting ")[1].split()[0])

    socks = []
    for _ in range(50):
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(b"GET /results/%s?wait=60s HTTP/1.1\r\nHost: x\r\n\r\n" % held.encode())
        socks.append(sock)
    wait_for(lambda: waiting() == 50, what="50 parked")
    for sock in socks:
        sock.close()
    wait_for(lambda: waiting() == 0, timeout=10, what="the 50 let go")

    # A put the broker holds for room in the full gate queue when the run
    # stops may yet be stored: 202 and its id, never a failure.
    http(address, "POST", "/queues/gate", b"2")  # the gate queue is full now
    pending = Call(address, "POST", "/queues/gate", b"3")
    wait_for(lambda: waiting() == 1, what="the put parked")

    # Requests and streams keep coming while the run stops.
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                sock = socket.create_connection((host, int(port)), timeout=2)
                sock.sendall(b"GET /events?topic=stats HTTP/1.1\r\nHost: x\r\n\r\n"
                             b"GET /results/%s?wait=60s HTTP/1.1\r\nHost: x\r\n\r\n"
                             % held.encode())
                socks.append(sock)
            except OSError:
                pass
            time.sleep(0.003)

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(1)
    try:
        assert run.stop() == 0, run.log()[-2000:]
        pending.join(timeout=10)
        status, _, answer = pending.answer
        assert (status, answer["state"]) == (202, "unconfirmed") and len(answer["id"]) == 32, \
            (status, answer)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        for sock in socks:
            sock.close()
    assert "Fatal error" not in run.log()
