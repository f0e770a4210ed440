"""Keys from URLs: an item put into a queue with `key = url-host` carries
the header zflow-key, the host of its URL, which the broker's flow control
limits it by (the broker never reads a body, so its writers set it). The
same rules as the C client's (client/zf_putter.c): a string body is the URL,
or a map's "url" string; the host is lowercased, with its port when it is
not its scheme's own (http 80, https 443)."""

import msgpack

HEADERS_COUNT = 64    # entries in an item's headers at most
HEADERS_MAX = 4096    # bytes of them packed at most
_HOST_MAX = 255       # bytes of a key from a URL at most
_SCHEME = frozenset(b"+-.")
_AUTHORITY_END = b"/?#\\"


def url_host(url):
    """The host of url (scheme://[user@]host[:port][/...]), or None. The
    authority ends at '/', '?', '#' or '\\' (as browsers read it), and the
    host is after its last '@'."""
    raw = url.encode("utf-8", "surrogatepass")
    if not raw[:1].isalpha():
        return None
    p = 1
    while p < len(raw) and (raw[p:p + 1].isalnum() or raw[p] in _SCHEME):
        p += 1
    scheme = raw[:p].lower()
    if raw[p:p + 3] != b"://":
        return None
    start = p + 3
    stop = start
    while stop < len(raw) and raw[stop] not in _AUTHORITY_END:
        stop += 1
    at = raw.rfind(b"@", start, stop)
    host = raw[at + 1 if at >= 0 else start:stop]
    if (scheme == b"http" and len(host) > 3 and host.endswith(b":80")) or \
            (scheme == b"https" and len(host) > 4 and host.endswith(b":443")):
        host = host[:host.rfind(b":")]
    if not host or len(host) > _HOST_MAX or any(b < 0x20 or b == 0x7f for b in host):
        return None
    try:
        return host.lower().decode("utf-8")
    except UnicodeDecodeError:  # a lone surrogate: not UTF-8, no key
        return None


def body_url(body):
    """The URL of a body (the value, before packing): a string, or the "url"
    string of a map; None for any other."""
    if isinstance(body, str):
        return body
    if isinstance(body, dict) and isinstance(body.get("url"), str):
        return body["url"]
    return None


def packed_url(packed):
    """The URL of a packed body as the C client reads it: a string, or the
    first "url" key's string of a map, read no further than that; None for
    any other, or bytes that are not msgpack that far."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(packed)
    try:
        try:
            count = unpacker.read_map_header()
        except msgpack.UnpackValueError:  # not a map: a string, or another value
            unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
            unpacker.feed(packed)
            value = unpacker.unpack()
            return value if isinstance(value, str) else None
        for _ in range(count):
            if unpacker.unpack() == "url":
                value = unpacker.unpack()
                return value if isinstance(value, str) else None
            unpacker.skip()
    except Exception:  # any bytes at all: not a URL
        return None
    return None


def keyed(headers, url):
    """headers (a dict, or None) with zflow-key the host of url, in place of
    any it had; as they were when url has no host or they have no room."""
    host = url_host(url) if url is not None else None
    if host is None:
        return headers
    kept = {k: v for k, v in (headers or {}).items() if k != "zflow-key"}
    if len(kept) + 1 > HEADERS_COUNT:
        return headers
    kept["zflow-key"] = host
    if len(msgpack.packb(kept)) > HEADERS_MAX:
        return headers
    return kept


def key_items(items, url_of, keyed_queues):
    """Sets zflow-key on each item envelope (a dict) bound for one of
    keyed_queues; url_of(i): the URL of item i's body, or None."""
    for i, item in enumerate(items):
        if item["queue"] in keyed_queues:
            headers = keyed(item.get("headers"), url_of(i))
            if headers is not None:
                item["headers"] = headers


def told(header):
    """The queues a WELCOME (or a reload's PING) says are keyed by URL
    (none when what it says is not a list of {"queue": name})."""
    rows = header.get("url_keyed")
    if not isinstance(rows, list):
        return frozenset()
    return frozenset(row["queue"] for row in rows
                     if isinstance(row, dict) and isinstance(row.get("queue"), str))
