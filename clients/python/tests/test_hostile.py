"""One running service, every kind of hostile input at once: bad frames on
intake, bad ZFP on the broker's ROUTER, bad HTTP on its gateway, a flood
of new group names, and tasks that kill their worker. The service stays
up, each bad input is refused (counted, with its reason) or its item dead
with the reason, and the good items around them all come back."""
import json
import os
import re
import socket
import subprocess
import urllib.error
import urllib.request

import msgpack
import pytest
import zmq

from conftest import GATED, ZFLOW, free_port, http, wait_for


def metric(address, name):
    text = urllib.request.urlopen("http://%s/metrics" % address, timeout=10).read().decode()
    found = re.search(r"^%s (\d+)$" % name, text, re.M)
    return int(found.group(1)) if found else None


def raw_tcp(address, data):
    """Sends data on a TCP connection to address; what comes back (b"" if
    the server closed it without a word)."""
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
        return answer


def router_answer(context, endpoint, frames):
    """Sends frames to the broker from a new DEALER: the first message it
    answers, decoded as (command, header), or None after 5 s."""
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    sock.connect(endpoint)
    try:
        sock.send_multipart(frames)
        answer = sock.recv_multipart()
        return answer[0].decode(), msgpack.unpackb(answer[1], raw=False,
                                                   unicode_errors="replace")
    except zmq.Again:
        return None
    finally:
        sock.close()


def hello(name, inputs=()):
    return [b"HELLO", msgpack.packb({"version": 1, "name": name, "inputs": list(inputs)},
                                    use_bin_type=True)]


@pytest.mark.serial
def test_hostile_input_is_contained(tmp_path, runs):
    intake = "tcp://127.0.0.1:%d" % free_port()
    gateway = "127.0.0.1:%d" % free_port()
    run = runs(tmp_path, GATED, broker="    intake = %s\n    metrics = %s\n    api = true\n"
               "    max-frame = 64KiB\n    max-groups = 20\n    api-put-wait = 300ms\n"
               % (intake, gateway))
    context = zmq.Context.instance()
    client = run.client()
    good = [client.put("poison", {"n": n}) for n in range(100)]
    wait_for(lambda: metric(gateway, "zflow_rejected_total") is not None, what="the metrics")
    rejected_before = metric(gateway, "zflow_rejected_total")

    # Intake: an item whose body is a msgpack str that is not UTF-8, one
    # that is no msgpack at all; frames that are no item (one frame, three,
    # a queue name that is not text, a queue that does not exist).
    push = context.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 1000)
    push.connect(intake)
    push.send_multipart([b"poison", b"\xa3\xff\xfe\xfd"])
    push.send_multipart([b"poison", b"\xc1"])
    push.send_multipart([b"poison"])
    push.send_multipart([b"poison", b"\x01", b"\x02"])
    push.send_multipart([b"\xff\xfe", b"\x01"])
    push.send_multipart([b"nosuch", b"\x01"])
    push.close()

    # ROUTER: a command that is no command, a name that is not text, a PUT
    # whose body is no msgpack, a frame over max-frame (the socket drops
    # that peer), and 30 new client groups where 20 may be.
    endpoint = run.endpoint
    command, header = router_answer(context, endpoint, [b"GARBAGE", b"\x00"])
    assert command == "ERROR", (command, header)
    command, header = router_answer(
        context, endpoint, [b"HELLO", b"\x82\xa7version\x01\xa4name\xa2\xff\xfe"])
    assert command == "ERROR" and "UTF-8" in header["reason"], header
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    sock.connect(endpoint)
    sock.send_multipart(hello("raw-putter"))
    assert sock.recv_multipart()[0] == b"WELCOME"
    item = {"id": os.urandom(16), "queue": "poison", "ts": 0}
    sock.send_multipart([b"PUT", msgpack.packb({"seq": 1, "items": [item]}, use_bin_type=True),
                         b"\xc1"])
    answers = {}
    while "CONFIRM" not in answers and "ERROR" not in answers:
        frames = sock.recv_multipart()
        answers[frames[0].decode()] = msgpack.unpackb(frames[1], raw=False)
    sock.send_multipart([b"PUT", b"\x80", b"x" * (100 << 10)])
    sock.close()
    welcomed = refused = 0
    for n in range(30):
        # (Of a queue of their own: a group has a copy of each item, and
        # its lineage ends only when the group has done it or is forgotten.)
        answer = router_answer(context, endpoint, hello("flood-%d" % n, ["flood"]))
        assert answer is not None, n
        welcomed += answer[0] == "WELCOME"
        refused += answer[0] == "ERROR" and "max-groups" in answer[1]["reason"]
    assert (welcomed, refused) == (20, 10)

    # HTTP: no JSON; over max-frame; over the gateway's own limit; a full
    # queue; a request that is no HTTP; a result id that is no id.
    status, _, answer = http(gateway, "POST", "/queues/poison", b"{not json")
    assert status == 400 and "not JSON" in answer["error"], answer
    status, _, answer = http(gateway, "POST", "/queues/poison",
                             json.dumps("x" * (100 << 10)).encode())
    assert status == 413 and "max-frame" in answer["error"], answer
    # (Refused on its Content-Length, before a byte of the body is read.)
    host, port = gateway.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /queues/poison HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                     % (2 << 20))
        assert sock.recv(4096).startswith(b"HTTP/1.1 413")
    held = [client.put("gate", n) for n in range(2)]
    status, headers, answer = http(gateway, "POST", "/queues/gate", b"3")
    assert status == 503 and "queue 'gate' is full (max-depth 2)" in answer["error"], answer
    assert int(headers["Retry-After"]) >= 1, dict(headers)
    answer = raw_tcp(gateway, b"\x16\x03\x01\x00\xff garbage\r\n\r\n")
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer[:200]
    status, _, answer = http(gateway, "GET", "/results/not-an-id")
    assert status in (400, 404), (status, answer)

    # Tasks that kill their worker: dead with the cause, after 2 attempts.
    poisoned = [client.put("poison", {"n": n, "poison": True}) for n in range(2)]

    # The service is up; every good item came back, every bad one is dead
    # with its reason or refused and counted.
    for n, task in enumerate(good):
        assert task.get(timeout=60) == {"n": n}
    for task in poisoned:
        result = client.result(task.id, 60)
        assert (result.state, result.error, result.attempts) == (
            "dead", "worker died: exit 3", 2), vars(result)
    open(os.path.join(str(tmp_path), "released"), "w").close()
    assert [task.get(timeout=60) for task in held] == [0, 1]
    # The PUT of no msgpack went in (the broker does not read bodies); its
    # worker fails it, once and for all, and goes on.
    assert answers == {"CONFIRM": {"seq": 1, "accepted": 1}}, answers
    result = client.result(item["id"].hex(), 20)
    assert (result.state, result.attempts) == ("dead", 1), vars(result)
    assert result.error == ("the item's body cannot be read: FormatError: not msgpack "
                            "(1 bytes, starting 0xc1)"), vars(result)
    # Refused and counted: the intake's 5 that are no item (its body no
    # msgpack among them), GARBAGE, the HELLO of a name not text, and the
    # 10 groups past max-groups.
    wait_for(lambda: metric(gateway, "zflow_rejected_total") == rejected_before + 17,
             what="17 more rejected")
    with urllib.request.urlopen("http://%s/health" % gateway, timeout=10) as answer:
        assert answer.status == 200
    # Dead: the two that killed their worker twice, the intake's text that
    # is not UTF-8, and the PUT of no msgpack.
    status = subprocess.run([ZFLOW, "status", run.endpoint], capture_output=True, text=True,
                            timeout=20).stdout
    queues = status.split("\n\n")[0].splitlines()  # the first table
    rows = {line.split()[0]: line.split() for line in queues}
    assert (rows["poison"][6], rows["poison.dead"][1]) == ("4", "4"), status
    assert client.put("poison", {"n": "after"}).get(timeout=20) == {"n": "after"}
    client.close()
    assert run.process.poll() is None, run.log()
    assert run.stop() == 0, run.log()
