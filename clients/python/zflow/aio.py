"""The client for asyncio (FastAPI, aiohttp): the same calls as Client,
as coroutines, any number of them at once on one session.

    client = await zflow.AsyncClient.connect("tcp://127.0.0.1:5670")
    task = await client.put("tasks", {"n": 7})
    print(await task.get(timeout=30))
"""
import asyncio
import math
import os
import socket
import time
from typing import (Any, Dict, FrozenSet, Iterable, List, Optional, Sequence, Tuple, Type,
                    TypeVar)

import zmq
import zmq.asyncio

from . import _curve, _keys, _zfp
from ._brokers import Brokers
from ._session import BrokerError, WrongBroker, refusal
from ._types import Curve, Duration, Endpoint, Headers, Id, When
from .client import (OVER, Refused, Result, _cancel_header, _cancelled_state, _ready_batches,
                     _group_batches, _put_batch, _put_wait, _refused, _status_header, _value)

_A = TypeVar("_A", bound="AsyncClient")


class AsyncHandle:
    def __init__(self, client: "AsyncClient", id: str) -> None:
        self.client = client
        self.id = id

    async def status(self) -> str:
        return await self.client.status(self.id)

    async def result(self, timeout: Optional[float] = None) -> Result:
        return await self.client.result(self.id, timeout)

    async def get(self, timeout: Optional[float] = 30) -> Any:
        """As Handle.get: the value, TimeoutError, or TaskFailed."""
        return _value(await self.client.result(self.id, timeout), timeout)

    async def cancel(self, reason: str = "") -> str:
        return await self.client.cancel(self.id, reason)

    def __repr__(self) -> str:
        return "AsyncHandle(%s)" % self.id


class _Finished(AsyncHandle):
    """The handle of an empty group: done at once, its value []."""

    async def status(self) -> str:
        return "done"

    async def result(self, timeout: Optional[float] = None) -> Result:
        return Result(self.id, "done", [[]])

    async def get(self, timeout: Optional[float] = 30) -> Any:
        return []

    async def cancel(self, reason: str = "") -> str:
        return "done"


class AsyncClient:
    """One session with the broker, shared by every coroutine of a loop.
    A background task reads the broker's answers and keeps the heartbeat;
    when the broker restarts, it opens a new session and asks again what
    is waiting."""

    def __init__(self, endpoint: Endpoint, name: str = "python-client",
                 pipeline: Optional[str] = None, timeout: float = 30,
                 curve: Optional[Curve] = None) -> None:
        self.brokers = Brokers(endpoint)  # one, or a group's: the session goes to the leader
        self.monitor = None
        self.curve = _curve.keys(curve)  # as Client's
        self.name = name
        self.pipeline = pipeline
        self.timeout = timeout
        self.context = zmq.asyncio.Context.instance()
        self.sock: Optional[zmq.asyncio.Socket] = None
        self.seq = 0
        # key -> [frames, future]: asked, not yet answered
        self.pending: Dict[Tuple[str, Any], List[Any]] = {}
        # REPORT key -> Event, set when that id's question is over
        self.asking: Dict[Tuple[str, bytes], asyncio.Event] = {}
        self.welcomed = asyncio.Event()
        self.heartbeat, self.liveness = 1000, 3
        self.last_sent = self.last_heard = 0.0
        self.reader: Optional["asyncio.Future[None]"] = None
        # WrongBroker, once the broker refused the session for good
        self.refused: Optional[WrongBroker] = None
        self.max_frame = 0       # bytes of a frame the broker takes, if WELCOME says
        # queues whose items are keyed by URL, as WELCOME says
        self.url_keyed: FrozenSet[str] = frozenset()

    @classmethod
    async def connect(cls: Type[_A], endpoint: Endpoint, **options: Any) -> _A:
        self = cls(endpoint, **options)
        self._open()
        self.reader = asyncio.ensure_future(self._read())
        try:
            await asyncio.wait_for(self.welcomed.wait(), self.timeout)
        except asyncio.TimeoutError:
            await self.close()
            raise BrokerError("no WELCOME from the broker at %s within %s s"
                              % (endpoint, self.timeout)) from None
        if self.refused is not None:
            await self.close()
            raise self.refused
        return self

    async def close(self) -> None:
        if self.reader:
            self.reader.cancel()
            try:
                await self.reader
            except asyncio.CancelledError:
                pass
            self.reader = None
        if self.sock is not None:
            if self.welcomed.is_set():
                await self._send(_zfp.encode("BYE", {}))
            Brokers.unwatch(self.sock, self.monitor)
            self.monitor = None
            self.sock.close(linger=1000)
            self.sock = None
        for _, future in self.pending.values():
            if not future.done():
                future.set_exception(BrokerError("the client was closed"))

    async def __aenter__(self: _A) -> _A:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the session -------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return self.brokers.endpoint

    def _open(self):
        if self.sock is not None:
            Brokers.unwatch(self.sock, self.monitor)
            self.sock.close(linger=0)
        self.sock = self.context.socket(zmq.DEALER)
        _curve.apply(self.sock, self.curve)
        self.monitor = self.brokers.watch(self.sock)
        self.sock.connect(self.endpoint)
        self.brokers.opened()
        hello = {"version": _zfp.VERSION, "name": self.name, "pid": os.getpid(),
                 "host": socket.gethostname()[:128]}
        if self.pipeline:
            hello["pipeline"] = self.pipeline
        self.welcomed.clear()
        self.sock.send_multipart(_zfp.encode("HELLO", hello))
        self.last_sent = self.last_heard = time.monotonic()

    async def _send(self, frames):
        await self.sock.send_multipart(frames)
        self.last_sent = time.monotonic()

    async def _read(self):
        while True:
            # Rounded up: a poll of 0 ms returns a done future, and awaiting
            # it would spin without yielding until a reopen is due.
            wait = math.ceil(1000 * self.brokers.wait(time.monotonic(), self.welcomed.is_set(),
                                                      self.heartbeat / 1000))
            poller = zmq.asyncio.Poller()
            poller.register(self.sock, zmq.POLLIN)
            if self.monitor is not None:
                poller.register(self.monitor, zmq.POLLIN)
            ready = dict(await poller.poll(wait))
            if self.monitor is not None and self.monitor in ready:
                if Brokers.gone(await self.monitor.recv_multipart(), self.welcomed.is_set()):
                    self.brokers.next()  # its broker went away: the next, at once
                    self._open()
                continue
            if self.sock not in ready:
                now = time.monotonic()
                if self.brokers.due(now, self.welcomed.is_set(), self.last_heard,
                                    self.heartbeat * self.liveness / 1000):
                    self._open()  # the broker is silent: a new session, when it comes back
                elif now - self.last_sent >= self.heartbeat / 1000:
                    await self._send(_zfp.encode("PING", {}))
                continue
            try:
                command, header, bodies = _zfp.decode(await self.sock.recv_multipart())
            except (_zfp.ProtocolError, ValueError):
                continue  # not ZFP: nothing waits for it
            self.last_heard = time.monotonic()
            if time.monotonic() - self.last_sent >= self.heartbeat / 1000:
                await self._send(_zfp.encode("PING", {}))
            if command == "WELCOME":
                self.heartbeat = header.get("heartbeat", self.heartbeat)
                self.liveness = header.get("liveness", self.liveness)
                self.max_frame = header.get("max_frame", 0)
                self.url_keyed = _keys.told(header)
                self.welcomed.set()
                for frames, _ in list(self.pending.values()):  # asked of the old session
                    await self._send(frames)
            elif command == "PING":
                if header.get("reloaded"):
                    self.url_keyed = _keys.told(header)
                await self._send(_zfp.encode("PONG", {}))
            elif command == "ERROR" and refusal(header.get("code"), self.welcomed.is_set()):
                # Refused for good: what waits fails, and nothing is tried again.
                self.refused = WrongBroker("the broker at %s refused the session: %s"
                                           % (self.endpoint, header.get("reason")))
                for _, future in self.pending.values():
                    if not future.done():
                        future.set_exception(self.refused)
                self.welcomed.set()  # wakes the waits, which raise it
                return
            elif command == "ERROR" and header.get("code") == "state" and \
                    "before HELLO" in header.get("reason", ""):
                self._open()
            elif command == "ERROR" and header.get("code") == "leader":
                if self.brokers.redirect(header.get("leader"), time.monotonic()):
                    self._open()
            elif command == "CONFIRM":
                self._answer(("CONFIRM", header.get("seq")), header, bodies)
            elif command == "REPORT":
                self._answer(("REPORT", header.get("id")), header, bodies)

    def _answer(self, key, header, bodies):
        waiting = self.pending.pop(key, None)
        if waiting and not waiting[1].done():
            waiting[1].set_result((header, bodies))

    async def _welcomed(self, timeout):
        """Waits for a session; BrokerError (as Client's) if none opens in time."""
        if self.refused is not None:
            raise self.refused
        try:
            await asyncio.wait_for(self.welcomed.wait(), timeout)
        except asyncio.TimeoutError:
            raise BrokerError("no WELCOME from the broker at %s within %s s"
                              % (self.endpoint, timeout)) from None
        if self.refused is not None:
            raise self.refused

    async def _request(self, key, frames, timeout):
        """The answer to frames, asked again on each new session; raises
        BrokerError when none came within timeout seconds."""
        deadline = time.monotonic() + timeout
        await self._welcomed(timeout)
        future = asyncio.get_running_loop().create_future()
        self.pending[key] = [frames, future]
        await self._send(frames)
        try:
            return await asyncio.wait_for(future, max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            raise BrokerError("the broker at %s did not answer within %s s"
                              % (self.endpoint, timeout)) from None
        finally:
            self.pending.pop(key, None)

    # -- the calls ---------------------------------------------------------

    async def put_many(self, queue: str, bodies: Iterable[Any],
                       delay: Optional[Duration] = None, at: Optional[When] = None,
                       priority: int = 0, headers: Optional[Headers] = None,
                       root: Optional[Id] = None, ids: Optional[Sequence[Id]] = None,
                       timeout: Optional[float] = None) -> List[AsyncHandle]:
        bodies = list(bodies)
        batches = [_put_batch(queue, bodies[first:first + _zfp.BATCH_MAX],
                              ids[first:] if ids else None, delay, at, priority, headers, root)
                   for first in range(0, len(bodies), _zfp.BATCH_MAX)]
        await self._welcomed(self.timeout if timeout is None else timeout)
        _ready_batches(batches, self.max_frame, self.url_keyed)
        handles = []
        for items, packed in batches:
            await self._put_confirmed(items, packed, timeout)
            handles += [AsyncHandle(self, item["id"].hex()) for item in items]
        return handles

    async def _put_confirmed(self, items, packed, timeout):
        self.seq += 1
        timeout = self.timeout if timeout is None else timeout
        frames = _zfp.encode("PUT", {"seq": self.seq, "items": items, "wait": _put_wait(timeout),
                                     "urgent": True}, packed)
        confirm, _ = await self._request(("CONFIRM", self.seq), frames, timeout)
        if confirm.get("refused"):
            raise _refused(confirm, len(items))

    async def group(self, queue: str, bodies: Iterable[Any], delay: Optional[Duration] = None,
                    at: Optional[When] = None, priority: int = 0,
                    headers: Optional[Headers] = None,
                    timeout: Optional[float] = None) -> AsyncHandle:
        """As Client.group: the group's handle; its value the gather's list."""
        bodies = list(bodies)
        group, batches = _group_batches(queue, bodies, delay, at, priority, headers)
        if not bodies:
            return _Finished(self, group)
        await self._welcomed(self.timeout if timeout is None else timeout)
        _ready_batches(batches, self.max_frame, self.url_keyed)
        for items, packed in batches:
            await self._put_confirmed(items, packed, timeout)
        return AsyncHandle(self, group)

    async def put(self, queue: str, body: Any, delay: Optional[Duration] = None,
                  at: Optional[When] = None, priority: int = 0,
                  headers: Optional[Headers] = None, root: Optional[Id] = None,
                  id: Optional[Id] = None, timeout: Optional[float] = None) -> AsyncHandle:
        return (await self.put_many(queue, [body], delay, at, priority, headers, root,
                                    [id] if id else None, timeout))[0]

    delay = put

    async def _report(self, id, results=False, wait=0):
        header = _status_header(id, results, wait)
        key = ("REPORT", header["id"])
        # One question per id at a time, as a REPORT names only its id: a
        # second waits until the first is over, woken by it. The key is
        # taken with no await between the look and the taking, or two
        # callers would both find it free and one of them lose its answer.
        while key in self.asking:
            await self.asking[key].wait()
        over = self.asking[key] = asyncio.Event()
        try:
            return await self._request(key, _zfp.encode("STATUS", header), self.timeout + wait)
        finally:
            del self.asking[key]
            over.set()

    async def status(self, id: Id) -> str:
        header, _ = await self._report(id)
        return header.get("state", "unknown")

    async def result(self, id: Id, timeout: Optional[float] = None) -> Result:
        header, bodies = await self._report(id, results=True, wait=timeout or 0)
        return Result._from(header, bodies)

    async def cancel(self, id: Id, reason: str = "") -> str:
        """As Client.cancel: the state after, or the one it was over in."""
        before = await self.status(id)
        if before in OVER or before == "unknown":
            return before
        await self._send(_zfp.encode("CANCEL", _cancel_header(id, reason)))
        return _cancelled_state(before, await self.status(id))


__all__ = ["AsyncClient", "AsyncHandle", "OVER"]
