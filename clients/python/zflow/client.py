"""The client: put tasks, ask their state and results, cancel them, tap the
broker's events. Blocking; one Client per thread (see AsyncClient for
asyncio)."""
import time
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, TypeVar

import msgpack
import zmq

from . import _curve, _keys, _zfp
from ._durations import seconds, unix_time
from ._session import BrokerError, Session
from ._types import Curve, Duration, Endpoint, Headers, Id, When

OVER = ("done", "dead", "cancelled")

_C = TypeVar("_C", bound="Client")


class Refused(BrokerError):
    """The broker refused a put: a queue its pipeline lacks, a queue full
    past the put's timeout, or a result past its limits. kind says which,
    to act on: "no-queue", "full" (busy: try again later), "results", or
    "too-big" (an item over the broker's max-frame, refused before it was
    sent); "" when the broker did not say."""

    def __init__(self, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.kind = kind


def _refused(confirm, count):
    """The Refused a CONFIRM with refused items makes."""
    return Refused("the broker refused %d of %d items: %s"
                   % (confirm["refused"], count, confirm.get("reason", "")),
                   confirm.get("code", ""))


class TaskFailed(Exception):
    """A task's lineage had an item dead-lettered (error says why) or was
    cancelled."""

    def __init__(self, result: "Result") -> None:
        self.result = result
        super().__init__("task %s %s%s" % (result.id, result.state,
                                           ": " + result.error if result.error else ""))


class Result:
    """A root's result: its state, and once over what its lineage put on
    the pipeline's results queues (values, unpacked), or why it failed
    (error, and detail: the worker's longer account, a traceback). While
    it runs, progress (0.0 to 1.0) and note: what its worker last said."""

    def __init__(self, id: str, state: str, values: Iterable[Any] = (), error: str = "",
                 queue: str = "", attempts: int = 0, detail: str = "",
                 progress: Optional[float] = None, note: str = "") -> None:
        self.id = id
        self.state = state
        self.values: List[Any] = list(values)
        self.error = error        # why it failed or was cancelled: one line
        self.detail = detail      # the failure's traceback, when the worker gave one
        self.queue = queue
        self.attempts = attempts
        self.progress = progress  # 0.0 to 1.0 while it runs, if its task said
        self.note = note          # what the task said with its progress

    @property
    def over(self) -> bool:
        return self.state in OVER

    def __repr__(self) -> str:
        return "Result(%s, %s, %r%s)" % (self.id, self.state, self.values,
                                         ", error=%r" % self.error if self.error else "")

    @classmethod
    def _from(cls, header: Dict[str, Any], bodies: Sequence[bytes], first: int = 0,
              end: Optional[int] = None) -> "Result":
        items = header.get("results") or []
        end = len(items) if end is None else end
        progress = header.get("progress")
        if progress is None and header.get("note"):
            progress = 0  # 0 is left out of a REPORT: a note says it was given
        return cls(header["id"].hex(), header.get("state", "unknown"),
                   [_decoded(b) for b in bodies[first:end]], header.get("reason", ""),
                   header.get("queue", ""), header.get("attempt", 0), header.get("detail", ""),
                   None if progress is None else progress / 1000, header.get("note", ""))


def _value(result: Result, timeout: Optional[float]) -> Any:
    """What get gives of a Result (Handle's and AsyncHandle's)."""
    if not result.over:
        raise TimeoutError("task %s still %s after %s s" % (result.id, result.state, timeout))
    if result.state != "done":
        raise TaskFailed(result)
    if len(result.values) == 1:
        return result.values[0]
    return result.values or None


class Handle:
    """What put returns: the task's id, and its state and result on asking."""

    def __init__(self, client: "Client", id: str) -> None:
        self.client = client
        self.id = id

    def status(self) -> str:
        return self.client.status(self.id)

    def result(self, timeout: Optional[float] = None) -> Result:
        return self.client.result(self.id, timeout)

    def get(self, timeout: Optional[float] = 30) -> Any:
        """The task's value once it is done (its one result; a list of them
        when it made several; None when none), like Celery's .get(). Raises
        TimeoutError when it is not over in time, TaskFailed when it died or
        was cancelled."""
        return _value(self.client.result(self.id, timeout), timeout)

    def cancel(self, reason: str = "") -> str:
        return self.client.cancel(self.id, reason)

    def __repr__(self) -> str:
        return "Handle(%s)" % self.id


class _Finished(Handle):
    """The Handle of an empty group: done at once, its value []."""

    def status(self) -> str:
        return "done"

    def result(self, timeout: Optional[float] = None) -> Result:
        return Result(self.id, "done", [[]])

    def get(self, timeout: Optional[float] = 30) -> Any:
        return []

    def cancel(self, reason: str = "") -> str:
        return "done"


def _put_batch(queue, bodies, ids, delay, at, priority, headers, root, group=None, first=0):
    """The envelopes and packed bodies of one PUT (at most BATCH_MAX);
    group: (its id, its size), the bodies its members from index first."""
    items = [_envelope(queue, _zfp.parse_id(ids[i]) if ids else _zfp.random_id(), delay, at,
                       priority, headers, root) for i in range(len(bodies))]
    if group:
        for index, item in enumerate(items):
            item["group"] = {"id": group[0], "size": group[1], "index": first + index}
    return items, [_zfp.pack(body) for body in bodies]


def _put_wait(timeout):
    """The PUT's `wait`, ms: the broker gives up on a full queue before the
    client stops waiting, so that its answer ("queue Q is full (max-depth
    N)") comes within the timeout."""
    ms = int(timeout * 1000)
    return ms - 1000 if ms > 2000 else max(1, ms // 2)


def _ready_batches(batches, max_frame, url_keyed):
    """Made ready to send once the broker's WELCOME said its max-frame and
    the queues it keys by URL: refused, before anything is sent, when a
    packed body is over that max-frame (its socket would drop the
    connection, and the put would wait out its time); the items bound for
    url_keyed carry their URL's host as zflow-key."""
    limit = max_frame or _zfp.FRAME_MAX
    for items, packed in batches:
        for body in packed:
            if len(body) > limit:
                raise Refused("an item of %d bytes is over the broker's max-frame (%d bytes): "
                              "not put" % (len(body), limit), "too-big")
        if url_keyed:
            _keys.key_items(items, lambda i: _keys.packed_url(packed[i]), url_keyed)


def _group_batches(queue, bodies, delay, at, priority, headers):
    """The group's id and its PUTs' (items, packed bodies): every member
    has the group's id as its root, so that the group's outcome is one
    root's result."""
    group = _zfp.random_id()
    batches = []
    for first in range(0, len(bodies), _zfp.BATCH_MAX):
        batches.append(_put_batch(queue, bodies[first:first + _zfp.BATCH_MAX], None, delay, at,
                                  priority, headers, group, (group, len(bodies)), first))
    return group.hex(), batches


def _cancelled_state(before, after):
    """What cancel returns: the state after it (cancelled), or the state
    the task was already in (done, dead, cancelled; unknown for an id the
    broker does not know), in which case the cancel changed nothing."""
    return before if before in OVER or before == "unknown" else after


def _status_header(id, results, wait):
    """A STATUS asking about id (with results; the broker waiting wait s)."""
    header = {"id": _zfp.parse_id(id)}
    if results:
        header["results"] = True
    if wait:
        header["wait"] = int(wait * 1000)
    return header


def _cancel_header(id, reason):
    header = {"id": _zfp.parse_id(id)}
    if reason:
        header["reason"] = reason
    return header


def _envelope(queue, id, delay, at, priority, headers, root):
    env = {"id": id, "queue": queue, "ts": int(time.time() * 1000)}
    if root:
        env["root"] = _zfp.parse_id(root)
    if headers:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
            raise ValueError("headers must map str to str")
        env["headers"] = dict(headers)
    not_before = 0
    if at is not None:
        not_before = int(unix_time(at, "at") * 1000)
    delay = seconds(delay, "delay")
    if delay:
        not_before = max(not_before, env["ts"] + int(delay * 1000))
    if not_before:
        env["not_before"] = not_before
    if priority:
        if not 0 <= priority <= 9:
            raise ValueError("priority %r is not from 0 to 9" % (priority,))
        env["priority"] = priority
    return env


class Client:
    """A session with the broker at endpoint (tcp://HOST:PORT, or the
    endpoints of a replicated group, comma-separated: the session goes to
    the leader), for a web app or a script. Bodies are Python values,
    packed as msgpack; results come back unpacked.

        client = zflow.Client("tcp://127.0.0.1:5670")
        task = client.put("tasks", {"n": 7}, delay=10, priority=9)
        print(task.get(timeout=30))
    """

    def __init__(self, endpoint: Endpoint, name: str = "python-client",
                 pipeline: Optional[str] = None, events: Optional[str] = None,
                 context: Optional[zmq.Context] = None, curve: Optional[Curve] = None,
                 timeout: float = 30) -> None:
        self.timeout = timeout
        self.events = events
        self.context = context or zmq.Context.instance()
        self.session = Session(endpoint, name, pipeline=pipeline, context=self.context,
                               curve=curve)
        self.seq = 0

    def close(self) -> None:
        self.session.close()

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ----------------------------------------------------------

    def _request(self, command, header, bodies, answered, timeout):
        """Sends a command and waits for the message answered(...) accepts;
        sends it again in a new session if the broker forgot this one."""
        session = self.session
        session.ensure_open(timeout)
        deadline = time.monotonic() + timeout
        sent_in = session.sessions
        session.send(command, header, bodies)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrokerError("the broker at %s did not answer %s within %s s"
                                  % (session.endpoint, command, timeout))
            message = session.receive(left)
            if session.sessions != sent_in:  # a new session: ask again there
                session.ensure_open(max(0.1, deadline - time.monotonic()))
                sent_in = session.sessions
                session.send(command, header, bodies)
                continue
            if message is None or message[0] == "WELCOME":
                continue
            if message[0] == "ERROR":
                raise BrokerError("the broker says %s: %s"
                                  % (message[1].get("code"), message[1].get("reason")))
            if answered(*message):
                return message

    def put_many(self, queue: str, bodies: Iterable[Any], delay: Optional[Duration] = None,
                 at: Optional[When] = None, priority: int = 0, headers: Optional[Headers] = None,
                 root: Optional[Id] = None, ids: Optional[Sequence[Id]] = None,
                 timeout: Optional[float] = None) -> List[Handle]:
        """Puts each body (any msgpack-able value) into queue; returns their
        Handles once the broker confirmed all. Raises Refused (naming why)
        for a queue the pipeline lacks."""
        bodies = list(bodies)
        timeout = self.timeout if timeout is None else timeout
        batches = [_put_batch(queue, bodies[first:first + _zfp.BATCH_MAX],
                              ids[first:] if ids else None, delay, at, priority, headers, root)
                   for first in range(0, len(bodies), _zfp.BATCH_MAX)]
        self.session.ensure_open(timeout)
        _ready_batches(batches, self.session.max_frame, self.session.url_keyed)
        handles = []
        for items, packed in batches:
            self._put_confirmed(items, packed, timeout)
            handles += [Handle(self, item["id"].hex()) for item in items]
        return handles

    def _put_confirmed(self, items, packed, timeout):
        self.seq += 1
        seq = self.seq
        _, confirm, _ = self._request(
            "PUT", {"seq": seq, "items": items, "wait": _put_wait(timeout), "urgent": True}, packed,
            lambda command, header, _: command == "CONFIRM" and header.get("seq") == seq,
            timeout)
        if confirm.get("refused"):
            raise _refused(confirm, len(items))

    def put(self, queue: str, body: Any, delay: Optional[Duration] = None,
            at: Optional[When] = None, priority: int = 0, headers: Optional[Headers] = None,
            root: Optional[Id] = None, id: Optional[Id] = None,
            timeout: Optional[float] = None) -> Handle:
        """Puts one task; its Handle once the broker has it. delay: seconds
        to wait before it runs (or text: "10s", "1m30s"); at: a datetime,
        a Unix time or ISO 8601 text ("2026-12-24T18:00:00Z"); priority 0
        to 9; headers: str to str, carried with it and all made from it."""
        return self.put_many(queue, [body], delay, at, priority, headers, root,
                             [id] if id else None, timeout)[0]

    delay = put  # Celery's name

    def group(self, queue: str, bodies: Iterable[Any], delay: Optional[Duration] = None,
              at: Optional[When] = None, priority: int = 0, headers: Optional[Headers] = None,
              timeout: Optional[float] = None) -> Handle:
        """Puts bodies as one group for a gather (asyncio.gather, Celery's
        group): the Handle of the group, whose value is the gather's list
        of results. An empty group is done at once, its value []."""
        bodies = list(bodies)
        group, batches = _group_batches(queue, bodies, delay, at, priority, headers)
        if not bodies:
            return _Finished(self, group)
        self.session.ensure_open(self.timeout if timeout is None else timeout)
        _ready_batches(batches, self.session.max_frame, self.session.url_keyed)
        for items, packed in batches:
            self._put_confirmed(items, packed, self.timeout if timeout is None else timeout)
        return Handle(self, group)

    def _report(self, id, results=False, wait=0, timeout=None):
        header = _status_header(id, results, wait)
        raw = header["id"]
        timeout = (self.timeout if timeout is None else timeout) + wait
        return self._request("STATUS", header, (), lambda command, header, _:
                             command == "REPORT" and header.get("id") == raw, timeout)

    def status(self, id: Id) -> str:
        """The item's state: queued, delayed, delivered, retrying, done,
        dead, cancelled or unknown (Result has its progress too)."""
        return self._report(id)[1].get("state", "unknown")

    def result(self, id: Id, timeout: Optional[float] = None) -> Result:
        """The root's Result; with timeout (seconds) the broker answers once
        its lineage is over, or when the time has passed (then the Result is
        not over)."""
        _, header, bodies = self._report(id, results=True, wait=timeout or 0)
        return Result._from(header, bodies)

    def cancel(self, id: Id, reason: str = "") -> str:
        """Cancels what is left of the root's lineage: queued items dropped,
        running ones' outputs dropped when they come; its state is
        cancelled, and reason its error. Returns the state: "cancelled",
        or the one it had when it was over already ("done", "dead") or
        unknown to the broker ("unknown"): then nothing changed."""
        before = self.status(id)
        if before in OVER or before == "unknown":
            return before
        self.session.send("CANCEL", _cancel_header(id, reason))
        return _cancelled_state(before, self.status(id))  # answered after the CANCEL

    # -- events ------------------------------------------------------------

    def tap(self, prefix: str = "", events: Optional[str] = None,
            timeout: Optional[float] = None) -> "Tap":
        """The broker's events whose topic starts with prefix, as (topic,
        map) pairs, subscribed from now on; data events (prefix
        "data.QUEUE") carry the items put, each {"id", "created", "body"}
        with its body decoded (bytes only if it is not msgpack). events: the broker's events
        endpoint (the one given to Client, or this). Iteration stops after
        timeout seconds without an event (None: never); close() ends it."""
        endpoint = events or self.events
        if not endpoint:
            raise ValueError("tap needs the broker's events endpoint")
        return Tap(self.context, endpoint, prefix, timeout, self.session.curve)


def _decoded(body):
    """An item's body as its value; bytes that are not msgpack (the broker
    never decodes bodies, so a raw writer may have put any) as they are."""
    if not isinstance(body, bytes):
        return body
    try:
        return _zfp.unpack_lenient(body)
    except (ValueError, TypeError, msgpack.UnpackException):
        return body  # not msgpack, or a map Python cannot key (a list as a key)


class Tap:
    """An iterator of events (Client.tap)."""

    sub: Optional[zmq.Socket]  # None once closed

    def __init__(self, context: zmq.Context, endpoint: str, prefix: str,
                 timeout: Optional[float], curve_keys: Optional[Curve] = None) -> None:
        self.timeout = timeout
        self.sub = sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        _curve.apply(sub, curve_keys)
        sub.connect(endpoint)
        sub.setsockopt(zmq.SUBSCRIBE, prefix.encode())

    def __iter__(self) -> "Tap":
        return self

    def __next__(self) -> Tuple[str, Any]:
        if self.sub is None or not self.sub.poll(
                None if self.timeout is None else int(self.timeout * 1000)):
            self.close()
            raise StopIteration
        raw, body = self.sub.recv_multipart()[:2]
        # Events carry names from peers: one that is not UTF-8 must not
        # end the tap (the broker refuses such names; an older one may not).
        topic, event = raw.decode(errors="replace"), _zfp.unpack_lenient(body)
        if topic.startswith(("data.", "sample.")) and isinstance(event, dict):
            for item in event.get("items") or ():
                item["body"] = _decoded(item.get("body"))
        return topic, event

    def close(self) -> None:
        if self.sub is not None:
            self.sub.close()
            self.sub = None
