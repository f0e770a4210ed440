#!/usr/bin/python3
"""Writes the ZFP/1 test vectors in this folder.

They are made with Python's msgpack package, an implementation independent of
zflow's C codec, from the field lists of schemas/zfp.md: the C tests decode
each file, check its fields, and re-encode it byte for byte. Run it again only
when the protocol changes (python3-msgpack from Debian):

    /usr/bin/python3 schemas/vectors/make_vectors.py

File format: each frame of the ZeroMQ message as a 4-byte big-endian length
followed by that many bytes.
"""
import os
import struct

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))

ID_A = bytes(range(16))                      # 000102...0f
ID_B = bytes(range(0x10, 0x20))              # 101112...1f
ID_C = bytes([0xAB] * 16)
TS = 1795000000000                           # 2026-11-18T...Z in ms


def pack(value):
    return msgpack.packb(value, use_bin_type=True)


def write(name, command, header, bodies=()):
    frames = [command.encode(), pack(header)] + [pack(b) for b in bodies]
    with open(os.path.join(HERE, name + ".zfp"), "wb") as f:
        for frame in frames:
            f.write(struct.pack(">I", len(frame)))
            f.write(frame)


write("hello", "HELLO", {
    "version": 1, "name": "fetch", "worker": 2, "pid": 4242, "host": "node-1",
    "inputs": ["urls"], "outputs": ["pages"], "heartbeat": 1000, "pipeline": "crawl",
    "done": 1200, "failed": 3})
write("welcome", "WELCOME", {
    "version": 1, "heartbeat": 1000, "liveness": 3, "window": 1000,
    "checkpoint": b"line=120", "timeout": 600000})
write("put", "PUT", {
    "seq": 7,
    "items": [
        {"id": ID_A, "queue": "urls", "ts": TS},
        {"id": ID_B, "queue": "pages", "ts": TS + 1, "parent": ID_A, "root": ID_C,
         "group": {"id": ID_C, "size": 3, "index": 1},
         "headers": {"content-type": "text/html"}},
    ],
    "checkpoint": b"\x00\x00\x00\x00\x00\x00\x00\x02",
    "track": True},
    bodies=["http://127.0.0.1:8080/a", {"url": "http://127.0.0.1:8080/b", "status": 200}])
write("confirm", "CONFIRM", {"seq": 7, "accepted": 1, "duplicates": 1})
write("credit", "CREDIT", {"credit": 64})
write("deliver", "DELIVER", {
    "items": [{"id": ID_A, "queue": "urls", "attempt": 2, "ts": TS}]},
    bodies=["http://127.0.0.1:8080/a"])
write("control-schedule", "CONTROL", {
    "op": "schedule-add", "queue": "reports", "tag": 10, "name": "nightly",
    "spec": {"cron": "0 2 * * *", "tz": "Europe/Paris", "payload": pack({"kind": "full"}),
             "misfire_grace": 60000, "max_instances": 1}})
write("report-schedules", "REPORT", {
    "tag": 10, "state": "ok",
    "schedules": [{"name": "nightly", "queue": "reports", "trigger": "cron 0 2 * * *",
                   "tz": "Europe/Paris", "next": TS, "last": TS - 86400000, "fired": 3},
                  {"name": "tick/every", "queue": "ticks", "trigger": "every 10s",
                   "tz": "UTC", "config": True, "paused": True, "missed": 1}]})
write("ack", "ACK", {"ids": [ID_A, ID_B]})
write("nack", "NACK", {"id": ID_A, "reason": "HTTP 503", "final": True, "delay": 1500,
                      "detail": "Traceback (most recent call last):\n  File \"fetch.py\", "
                                "line 12\nHTTPError: 503"})
write("ping", "PING", {})
write("ping-figures", "PING", {"figures": {"requests": 3, "latency_ms": {"p50": 1.5}}})
write("pong", "PONG", {})
write("error", "ERROR", {"code": "command", "reason": "unknown command 'HELO'"})
write("error-leader", "ERROR", {"code": "leader",
                                "reason": "node 2 does not lead; the leader is tcp://10.0.0.1:5670",
                                "leader": "tcp://10.0.0.1:5670"})
write("end", "END", {"count": 100000})
write("cancel", "CANCEL", {"id": ID_C, "reason": "group failed", "dead": True})
write("done", "DONE", {
    "roots": [{"id": ID_C, "state": "done"},
              {"id": ID_A, "state": "dead", "queue": "urls", "attempt": 3, "reason": "HTTP 503"}],
    "results": [{"id": ID_B, "queue": "answers", "ts": TS, "root": ID_C}]},
    bodies=[42])
write("status", "STATUS", {"id": ID_A})
write("report", "REPORT", {
    "id": ID_A, "state": "retrying", "queue": "urls", "attempt": 2, "reason": "HTTP 503",
    "detail": "Traceback (most recent call last):\nHTTPError: 503",
    "progress": 420, "note": "resizing images",
    "queues": [{"name": "urls", "depth": 10, "inflight": 2, "put": 300, "ack": 288,
                "nack": 3, "dead": 0, "consumers": 4}],
    "groups": [{"queue": "urls", "name": "fetch", "workers": 4, "ready": 8, "inflight": 2,
                "acked": 288, "declared": True},
               {"queue": "urls", "name": "probe", "workers": 0, "ready": 10, "inflight": 0,
                "acked": 0, "declared": False}]})
write("bye", "BYE", {})
write("progress", "PROGRESS", {"id": ID_A, "progress": 420, "note": "resizing images"})
write("control", "CONTROL", {
    "op": "requeue", "queue": "urls.dead", "ids": [ID_A, ID_B],
    "where": "tenant=acme", "older": 60000, "limit": 100, "tag": 9})
write("report-control", "REPORT", {
    "tag": 9,
    "queues": [{"name": "urls", "depth": 10, "inflight": 0, "put": 300, "ack": 288,
                "nack": 3, "dead": 2, "consumers": 4, "paused": True}],
    "results": [{"id": ID_A, "queue": "urls", "attempt": 3, "ts": TS, "root": ID_C,
                 "headers": {"zflow-queue": "urls", "zflow-attempts": "3",
                             "zflow-error": "HTTP 503"}}],
    "count": 2},
    bodies=["http://127.0.0.1:8080/a"])


# --------------------------------------------------------------------------
# Id derivation vectors (ids.txt), from this independent SipHash-2-4-128.

MASK = (1 << 64) - 1
KEY = b"zflow/id/v1".ljust(16, b"\0")


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & MASK


def siphash128(key, data):
    k0 = int.from_bytes(key[:8], "little")
    k1 = int.from_bytes(key[8:], "little")
    v = [0x736F6D6570736575 ^ k0, 0x646F72616E646F6D ^ k1 ^ 0xEE,
         0x6C7967656E657261 ^ k0, 0x7465646279746573 ^ k1]

    def rounds(n):
        for _ in range(n):
            v[0] = (v[0] + v[1]) & MASK; v[1] = _rotl(v[1], 13); v[1] ^= v[0]
            v[0] = _rotl(v[0], 32)
            v[2] = (v[2] + v[3]) & MASK; v[3] = _rotl(v[3], 16); v[3] ^= v[2]
            v[0] = (v[0] + v[3]) & MASK; v[3] = _rotl(v[3], 21); v[3] ^= v[0]
            v[2] = (v[2] + v[1]) & MASK; v[1] = _rotl(v[1], 17); v[1] ^= v[2]
            v[2] = _rotl(v[2], 32)

    whole = len(data) - len(data) % 8
    for i in range(0, whole, 8):
        m = int.from_bytes(data[i:i + 8], "little")
        v[3] ^= m; rounds(2); v[0] ^= m
    last = (len(data) & 0xFF) << 56 | int.from_bytes(data[whole:], "little")
    v[3] ^= last; rounds(2); v[0] ^= last
    v[2] ^= 0xEE; rounds(4)
    out = (v[0] ^ v[1] ^ v[2] ^ v[3]).to_bytes(8, "little")
    v[1] ^= 0xDD; rounds(4)
    return out + (v[0] ^ v[1] ^ v[2] ^ v[3]).to_bytes(8, "little")


# The reference vectors of the SipHash authors (key 00..0f, message 00..n-1).
assert siphash128(bytes(range(16)), b"").hex() == "a3817f04ba25a8e66df67214c7550293"
assert siphash128(bytes(range(16)), b"\0").hex() == "da87c1d86b99af44347659119b22fc45"


def child(parent, index):
    return siphash128(KEY, b"c" + parent + index.to_bytes(4, "big"))


def output(parent, group, index):
    return siphash128(KEY, b"o" + parent + index.to_bytes(4, "big") + group.encode())


def named(tag, name, number):
    return siphash128(KEY, tag + name.encode() + b"\0" + number.to_bytes(8, "big"))


with open(os.path.join(HERE, "ids.txt"), "w") as f:
    f.write("# kind input... -> id (hex); made by make_vectors.py\n")
    for parent, index in [(ID_A, 0), (ID_A, 1), (ID_B, 4294967295)]:
        f.write("child %s %d %s\n" % (parent.hex(), index, child(parent, index).hex()))
    for parent, group, index in [(ID_A, "fetch", 0), (ID_A, "audit", 0), (ID_B, "g", 4294967295)]:
        f.write("output %s/%s %d %s\n" % (parent.hex(), group, index,
                                          output(parent, group, index).hex()))
    for job, when in [("crawl/hourly/feed", 1795000000000), ("crawl/hourly/feed", 1795003600000),
                      ("p/tick/every-10ms", 0)]:
        f.write("firing %s %d %s\n" % (job, when, named(b"f", job, when).hex()))
    for source, pos in [("crawl/seeds", 0), ("crawl/seeds", 1), ("crawl/seeds", 99999)]:
        f.write("source %s %d %s\n" % (source, pos, named(b"s", source, pos).hex()))


# Events (zfp.md §7): the map of each, one file each in events/ (the topic is
# the file's name; the C tests decode them and encode the same bytes back).
EVENTS = os.path.join(HERE, "events")
os.makedirs(EVENTS, exist_ok=True)


def event(name, fields):
    with open(os.path.join(EVENTS, name + ".msgpack"), "wb") as f:
        f.write(pack(fields))


FIGURES = {"requests": 12, "status": {"2xx": 11, "5xx": 1}}
event("stats", {
    "seq": 41, "ts": TS,
    "queues": [
        {"name": "urls", "depth": 3, "inflight": 2, "put": 1000, "ack": 995, "nack": 4,
         "dead": 1, "put_rate": 12.5, "ack_rate": 0.0,
         "groups": [{"name": "fetch", "workers": 2, "ready": 1, "acked": 995}]},
        {"name": "urls.dead", "depth": 1, "inflight": 0, "put": 1, "ack": 0, "nack": 0,
         "dead": 0, "put_rate": 0.0, "ack_rate": 0.0, "groups": []},
    ],
    "workers": [
        {"actor": "fetch", "worker": 0, "host": "node-1", "pid": 4242, "inflight": 2,
         "done": 600, "failed": 3, "figures": FIGURES},
        {"actor": "seeds", "worker": 0, "host": "node-1", "pid": 4243, "inflight": 0,
         "done": 0, "failed": 0},
    ],
    "lineages": 7, "ended": ["seeds"], "rejected": 2, "late_acks": 1,
    "journal": {"written": 65536, "durable": 60000, "waiting": 3, "compactions": 1,
                "compaction_ms": 31, "failed": "disk full"}})
event("worker.joined", {"seq": 1, "ts": TS, "actor": "fetch", "worker": 1, "host": "node-2",
                        "pid": 77, "reason": ""})
event("dead.urls", {"seq": 5, "ts": TS, "id": ID_A.hex(), "queue": "urls", "group": "fetch",
                    "attempt": 5, "reason": "HTTP 503"})
event("error.protocol", {"seq": 2, "ts": TS, "socket": "intake", "from": "",
                         "reason": "frame 0 is not a queue name"})
event("auth.refused", {"seq": 3, "ts": TS, "address": "198.51.100.9", "key": "",
                       "reason": "no client key"})
