"""The Python codec (zflow/_zfp.py) against the wire protocol's test vectors
(schemas/vectors, schemas/zfp.md): each .zfp file decodes to the command,
header and bodies that make_vectors.py wrote it with, and encodes back to
the same bytes, as the C codec's tests check (tests/schemas/test_proto.c);
each event in events/ reads as its fields and packs back the same; what the
client takes from a REPORT, a DELIVER or a WELCOME is what was written; and
every cut of a vector's header, and each kind of message that is not ZFP,
is refused with the errors the client's readers catch, never another.
(ids.txt is test_ids.py's.)"""
import ast
import glob
import os
import struct

import pytest

from conftest import ROOT
from zflow import _zfp
from zflow.client import Result
from zflow.worker import Context

VECTORS = os.path.join(ROOT, "schemas", "vectors")

# What Session._take and AsyncClient._read catch: anything else raised by
# decode would end a call with a stray exception, or the reader task.
NOT_ZFP = (_zfp.ProtocolError, ValueError)


def _written():
    """What make_vectors.py writes, as {"write": {name: (command, header,
    bodies)}, "event": {name: fields}}: its calls of write() and event(),
    their arguments evaluated with its own constants and helpers (its
    other statements, which write the files, are not run)."""
    path = os.path.join(VECTORS, "make_vectors.py")
    with open(path) as f:
        module = ast.parse(f.read(), path)
    scope = {"__file__": path}
    calls = []
    for statement in module.body:
        if isinstance(statement, (ast.Import, ast.ImportFrom, ast.Assign, ast.FunctionDef)):
            exec(compile(ast.Module([statement], []), path, "exec"), scope)
        elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call) and \
                isinstance(statement.value.func, ast.Name):
            calls.append(statement.value)

    def value(node):
        return eval(compile(ast.Expression(node), path, "eval"), scope)

    found = {"write": {}, "event": {}}
    for call in calls:
        args = [value(a) for a in call.args]
        kwargs = {k.arg: value(k.value) for k in call.keywords}
        if call.func.id == "write":
            name, command, header = args[:3]
            bodies = args[3] if len(args) > 3 else kwargs.get("bodies", ())
            found["write"][name] = (command, header, list(bodies))
        elif call.func.id == "event":
            found["event"][args[0]] = args[1]
    return found


WRITTEN = _written()


def _load(name):
    """The frames of a .zfp file (each a 4-byte big-endian length, then
    its bytes), and the file's bytes."""
    with open(os.path.join(VECTORS, name + ".zfp"), "rb") as f:
        raw = f.read()
    frames, at = [], 0
    while at < len(raw):
        (size,) = struct.unpack(">I", raw[at:at + 4])
        frames.append(raw[at + 4:at + 4 + size])
        at += 4 + size
    assert at == len(raw), "%s.zfp ends inside a frame" % name
    return frames, raw


def _serialised(frames):
    return b"".join(struct.pack(">I", len(frame)) + frame for frame in frames)


def test_every_vector_is_one_the_generator_writes():
    on_disk = {os.path.basename(p)[:-4] for p in glob.glob(os.path.join(VECTORS, "*.zfp"))}
    assert on_disk == set(WRITTEN["write"])
    assert {"hello", "put", "deliver", "report", "welcome"} <= on_disk
    events = {os.path.basename(p)[:-8]
              for p in glob.glob(os.path.join(VECTORS, "events", "*.msgpack"))}
    assert events == set(WRITTEN["event"]) and events


@pytest.mark.parametrize("name", sorted(WRITTEN["write"]))
def test_a_vector_decodes_to_what_was_written_and_encodes_back(name):
    command, header, bodies = WRITTEN["write"][name]
    frames, raw = _load(name)
    got_command, got_header, got_bodies = _zfp.decode(frames)
    assert (got_command, got_header) == (command, header)
    assert [_zfp.unpack(body) for body in got_bodies] == bodies
    assert _serialised(_zfp.encode(got_command, got_header, got_bodies)) == raw
    # and from the values, as a sender makes it
    assert _serialised(_zfp.encode(command, header, [_zfp.pack(b) for b in bodies])) == raw


@pytest.mark.parametrize("name", sorted(WRITTEN["event"]))
def test_an_event_reads_as_its_fields_and_packs_back(name):
    with open(os.path.join(VECTORS, "events", name + ".msgpack"), "rb") as f:
        raw = f.read()
    event = _zfp.unpack_lenient(raw)
    assert event == WRITTEN["event"][name]
    assert _zfp.pack(event) == raw


def test_what_the_client_reads_of_the_vectors():
    # A REPORT as Client.result gives it.
    _, header, bodies = _zfp.decode(_load("report")[0])
    result = Result._from(header, bodies)
    assert (result.id, result.state, result.queue, result.attempts) == \
        (bytes(range(16)).hex(), "retrying", "urls", 2)
    assert (result.error, result.progress, result.note, result.over) == \
        ("HTTP 503", 0.42, "resizing images", False)
    assert result.detail == "Traceback (most recent call last):\nHTTPError: 503"

    # A DELIVER's item as a task's Context sees it: a root is its own root.
    _, header, bodies = _zfp.decode(_load("deliver")[0])
    ctx = Context(None, header["items"][0])
    assert (ctx.id, ctx.root, ctx.attempt, ctx.queue, ctx.headers) == \
        (bytes(range(16)).hex(), bytes(range(16)).hex(), 2, "urls", {})
    assert [_zfp.unpack(body) for body in bodies] == ["http://127.0.0.1:8080/a"]

    # The WELCOME's settings a session takes.
    command, header, _ = _zfp.decode(_load("welcome")[0])
    assert command == "WELCOME"
    assert (header["heartbeat"], header["liveness"], header["window"], header["timeout"]) == \
        (1000, 3, 1000, 600000)

    # ERROR "leader" names the leader in a field of its own.
    _, header, _ = _zfp.decode(_load("error-leader")[0])
    assert (header["code"], header["leader"]) == ("leader", "tcp://10.0.0.1:5670")


@pytest.mark.parametrize("name", sorted(WRITTEN["write"]))
def test_every_cut_of_a_header_is_not_zfp(name):
    frames, _ = _load(name)
    for cut in range(len(frames[1])):
        with pytest.raises(NOT_ZFP):
            _zfp.decode([frames[0], frames[1][:cut]] + frames[2:])


@pytest.mark.parametrize("frames", [
    [],                                              # no frames
    [b"PING"],                                       # no header
    [b"PING", b"\x90"],                              # a header that is an array
    [b"PING", b"\xc0"],                              # nil
    [b"PING", b"\x80", b"\xa1x"],                    # a body on a command that has none
    [b"PING", b"\x80\xc0"],                          # bytes after the header map
    [b"PING", b"\x81\xa1z\xc1"],                     # the byte msgpack never uses
    [b"ERROR", b"\x81\xa4code\xa2\xff\xfe"],         # a str that is not UTF-8
    [b"PING\xff", b"\x80"],                          # a command that is not UTF-8
    [b"PING", b"\x81\xa1z" + b"\x91" * 5000 + b"\xc0"],  # nested past the unpacker's depth
    [b"ACK", b"\x81\xa3ids\xdd\xff\xff\xff\xff"],    # 4 billion ids announced in 10 bytes
    [b"PING", b"\x81\x91\x01\x02"],                  # a key Python cannot hash: an array
    [b"REPORT", b"\x81\xa5state\x81\x81\x01\x02\x03"],  # a map keyed by a map, inside
    [b"DELIVER", _zfp.pack({"items": [{}, {}]}), b"\x01"],  # two items, one body
    [b"DELIVER", _zfp.pack({"items": [{}]}), b"\x01", b"\x02"],  # one item, two bodies
    [b"DONE", _zfp.pack({"roots": [], "results": 3}), b"\x01"],  # results that are no list
    [b"PUT", _zfp.pack({"seq": 1}), b"\x01"],       # a body and no items
    [b"DELIVER", _zfp.pack({"items": 0})],           # items that are no list, though falsy
    [b"DELIVER", _zfp.pack({"items": None})],
    [b"DELIVER", _zfp.pack({"items": [1]}), b"\x01"],  # an item that is no map
])
def test_what_is_not_zfp_is_refused_as_such(frames):
    with pytest.raises(NOT_ZFP):
        _zfp.decode(frames)
