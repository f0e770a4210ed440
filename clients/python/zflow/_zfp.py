"""ZFP/1 framing (schemas/zfp.md): commands as ZeroMQ multipart messages,
frame 0 the command name, frame 1 a msgpack map, then one body frame per
item of a PUT, DELIVER, REPORT or DONE; and the ids (§3)."""
import ctypes
import ctypes.util
import os
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Tuple, Union

import msgpack

VERSION = 1
BATCH_MAX = 256          # items in one PUT or DELIVER
IDS_MAX = 1024           # ids in one ACK
FRAME_MAX = 16 << 20     # bytes of a frame the broker takes (max-frame's default): a larger
                         # one resets the connection, and the message is lost
GROUP_RESULT = 0xFFFFFFFF

# The commands with bodies, and the header's list that has one entry per body.
_BODIES = {b"PUT": "items", b"DELIVER": "items", b"REPORT": "results", b"DONE": "results"}


class ProtocolError(Exception):
    """A message that is not ZFP/1."""


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def unpack_lenient(data: bytes) -> Any:
    """As unpack, but a str that is not UTF-8 comes out with U+FFFD for
    its bad bytes rather than failing the whole value: for what is shown
    to a person (events, taps), where one bad name must not stop the rest."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False,
                           unicode_errors="replace")


def encode(command: str, header: Mapping[str, Any], bodies: Iterable[bytes] = ()) -> List[bytes]:
    """The frames of one message; bodies are msgpack bytes already."""
    return [command.encode(), pack(header)] + list(bodies)


def decode(frames: Sequence[Any]) -> Tuple[str, Dict[str, Any], List[bytes]]:
    """(command, header, bodies) of a message's frames."""
    if len(frames) < 2:
        raise ProtocolError("%d frames, a command needs at least 2" % len(frames))
    command = bytes(frames[0])
    try:
        header = unpack(bytes(frames[1]))
    except TypeError as e:
        # A map keyed by an array or a map, which Python cannot key: not
        # ZFP, and to be refused as such, or it would escape the readers.
        raise ProtocolError("the header of %s cannot be read: %s"
                            % (command.decode(errors="replace"), e)) from None
    if not isinstance(header, dict):
        raise ProtocolError("the header of %s is not a map" % command.decode(errors="replace"))
    bodies = [bytes(f) for f in frames[2:]]
    listed = _BODIES.get(command)
    if listed is None:
        if bodies:
            raise ProtocolError("%s carries no bodies" % command.decode(errors="replace"))
    else:
        # As the C codec: a list of maps, one a body; an item without its
        # body, or a body without its item, would pair the rest wrongly (or
        # drop them unacked).
        entries = header.get(listed, [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ProtocolError("%s: %s is not a list of maps" % (command.decode(), listed))
        if len(entries) != len(bodies):
            raise ProtocolError("%s: %d %s but %d body frames"
                                % (command.decode(), len(entries), listed, len(bodies)))
    return command.decode(), header, bodies


# ---------------------------------------------------------------------------
# Ids: 16 bytes, shown as 32 hex digits; derived ones by SipHash-2-4-128.

_MASK = (1 << 64) - 1
_KEY = b"zflow/id/v1".ljust(16, b"\0")


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & _MASK


def _siphash128(key, data):
    k0 = int.from_bytes(key[:8], "little")
    k1 = int.from_bytes(key[8:], "little")
    v0, v1 = 0x736F6D6570736575 ^ k0, 0x646F72616E646F6D ^ k1 ^ 0xEE
    v2, v3 = 0x6C7967656E657261 ^ k0, 0x7465646279746573 ^ k1

    def rounds(n, v0, v1, v2, v3):
        for _ in range(n):
            v0 = (v0 + v1) & _MASK; v1 = _rotl(v1, 13) ^ v0; v0 = _rotl(v0, 32)
            v2 = (v2 + v3) & _MASK; v3 = _rotl(v3, 16) ^ v2
            v0 = (v0 + v3) & _MASK; v3 = _rotl(v3, 21) ^ v0
            v2 = (v2 + v1) & _MASK; v1 = _rotl(v1, 17) ^ v2; v2 = _rotl(v2, 32)
        return v0, v1, v2, v3

    whole = len(data) - len(data) % 8
    for i in range(0, whole, 8):
        m = int.from_bytes(data[i:i + 8], "little")
        v3 ^= m
        v0, v1, v2, v3 = rounds(2, v0, v1, v2, v3)
        v0 ^= m
    last = (len(data) & 0xFF) << 56 | int.from_bytes(data[whole:], "little")
    v3 ^= last
    v0, v1, v2, v3 = rounds(2, v0, v1, v2, v3)
    v0 ^= last
    v2 ^= 0xEE
    v0, v1, v2, v3 = rounds(4, v0, v1, v2, v3)
    out = (v0 ^ v1 ^ v2 ^ v3).to_bytes(8, "little")
    v1 ^= 0xDD
    v0, v1, v2, v3 = rounds(4, v0, v1, v2, v3)
    return out + (v0 ^ v1 ^ v2 ^ v3).to_bytes(8, "little")


def random_id() -> bytes:
    return os.urandom(16)


def _python_output_id(parent: bytes, group: str, index: int) -> bytes:
    return _siphash128(_KEY, b"o" + parent + index.to_bytes(4, "big") + group.encode())


class _Id(ctypes.Structure):
    _fields_ = [("bytes", ctypes.c_uint8 * 16)]


def _libzflow():
    """libzflow's zf_id_output, when the library is there ($ZFLOW_LIB, the
    system's, or this checkout's build/): SipHash in C, some 40 times
    faster than in Python. None otherwise."""
    here = os.path.dirname(os.path.abspath(__file__))
    for path in (os.environ.get("ZFLOW_LIB"), ctypes.util.find_library("zflow"),
                 os.path.join(here, "..", "..", "..", "build", "libzflow.so")):
        if not path:
            continue
        try:
            output = ctypes.CDLL(path).zf_id_output
        except (OSError, AttributeError):
            continue
        output.restype = _Id
        output.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint32]
        if bytes(output(bytes(16), b"g", 1).bytes) == _python_output_id(bytes(16), "g", 1):
            return output
    return None


_c_output = _libzflow()


def output_id(parent: bytes, group: str, index: int) -> bytes:
    """The id of output number index that consumer group group makes of the
    item parent: the same on every attempt, so the broker drops a
    redelivered item's second outputs, and another for each group that
    reads the item (a fan-out's branches each keep their outputs)."""
    if _c_output:
        return bytes(_c_output(parent, group.encode(), index).bytes)
    return _python_output_id(parent, group, index)


def parse_id(text: Union[str, bytes, bytearray]) -> bytes:
    """16 bytes from 32 hex digits (or 16 bytes as they are); all zeros is
    no id (the protocol's "none")."""
    if isinstance(text, (bytes, bytearray)) and len(text) == 16:
        text = bytes(text).hex()
    try:
        raw = bytes.fromhex(text)  # type: ignore[arg-type]  # bytes of another size: refused
    except (TypeError, ValueError):
        raw = b""
    if len(raw) != 16 or raw == bytes(16):
        raise ValueError("%r is not an id (32 hex digits, not all zero)" % (text,))
    return raw
