"""A ZFP session with the broker: one DEALER socket, HELLO and WELCOME,
heartbeats, and a new session when the broker has forgotten this one (it
restarted, or the program was silent past the broker's liveness), which
gets first the PUTs the old one did not confirm (put). With the brokers
of a group, the session goes to the leader (_brokers)."""
import math
import os
import socket
import time
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Mapping, Optional, Tuple

import zmq

from . import _curve, _keys, _zfp
from ._brokers import Brokers
from ._types import Curve, Endpoint, Message


class BrokerError(Exception):
    """The broker answered ERROR, or did not answer in time."""


class WrongBroker(BrokerError):
    """The broker refused the session for good: it runs another pipeline,
    or speaks another protocol version (or refused a name in HELLO). No new
    session would fare better: every later call raises it again."""


def refusal(code: Optional[str], welcomed: bool) -> bool:
    """True for an ERROR that answers a HELLO and means "not here, ever":
    before WELCOME the broker answers HELLO first, so a `version` or
    `value` then is its answer."""
    return not welcomed and code in ("version", "value")


class Session:
    def __init__(self, endpoint: Endpoint, name: str, inputs: Iterable[str] = (),
                 outputs: Iterable[str] = (), pipeline: Optional[str] = None, worker: int = 0,
                 context: Optional[zmq.Context] = None, curve: Optional[Curve] = None) -> None:
        """curve: (this side's secret certificate, the broker's public one),
        the paths zflow keygen wrote; None: from ZFLOW_CURVE_CERT and
        ZFLOW_CURVE_SERVER when set (docs/security.md). endpoint: one
        broker, or a group's (comma-separated, or a list)."""
        self.brokers = Brokers(endpoint)
        self.monitor = None
        self.name = name
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.pipeline = pipeline
        self.worker = worker
        self.context = context or zmq.Context.instance()
        self.curve = _curve.keys(curve)
        self.heartbeat = 1000      # ms, until WELCOME says
        self.liveness = 3
        self.window = 1000         # PUT items unconfirmed at most
        self.timeout = 0           # ms: the input queue's timeout, if WELCOME says
        self.max_frame = 0         # bytes of a frame the broker takes, if WELCOME says
        # queues whose items are keyed by URL, as WELCOME says
        self.url_keyed: FrozenSet[str] = frozenset()
        self.sessions = 0          # sessions opened: more than 1 after the broker forgot one
        self.sock: Optional[zmq.Socket] = None
        # seq -> (items, frames): PUTs sent, not yet confirmed
        self.unconfirmed: Dict[int, Tuple[int, List[bytes]]] = {}
        self.welcomed = False
        self.last_sent = self.last_heard = 0.0
        self.opened_at = 0.0       # when the last HELLO went
        # How long this side was silent, past the broker's liveness (its
        # process did not run: a call that held the GIL, a stopped
        # process), when it ran again; the broker took the session for
        # dead meanwhile. Its reader sets it back to 0.
        self.stalled = 0.0
        self.on_open: Optional[Callable[[], None]] = None  # after each new session's WELCOME
        self.wakeup: Optional[int] = None  # a file descriptor that ends receive when readable
        # WrongBroker, once the broker refused the session for good
        self.refused: Optional[WrongBroker] = None
        # A worker's totals, which each new session's HELLO carries, for the
        # broker to count on from: () -> (done, failed)
        self.counts: Optional[Callable[[], Tuple[int, int]]] = None
        self.open()

    @property
    def endpoint(self) -> str:
        return self.brokers.endpoint

    # -- the socket --------------------------------------------------------

    def open(self) -> None:
        """A new session: a new socket, HELLO; WELCOME comes later."""
        if self.refused is not None:
            raise self.refused
        if self.sock is not None:
            Brokers.unwatch(self.sock, self.monitor)
            self.sock.close(linger=0)
        self.sock = self.context.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 2000)
        # No high-water mark: what is resent below must all go out, and
        # the window bounds it.
        self.sock.setsockopt(zmq.SNDHWM, 0)
        # Sends never wait: with no way to the broker (a refused CURVE
        # handshake leaves none) they fail, and a new session sends again.
        self.sock.setsockopt(zmq.SNDTIMEO, 0)
        _curve.apply(self.sock, self.curve)
        self.monitor = self.brokers.watch(self.sock)
        self.sock.connect(self.endpoint)
        self.brokers.opened()
        hello = {"version": _zfp.VERSION, "name": self.name}
        if self.worker:
            hello["worker"] = self.worker
        hello["pid"] = os.getpid()
        hello["host"] = socket.gethostname()[:128]
        if self.inputs:
            hello["inputs"] = self.inputs
        if self.outputs:
            hello["outputs"] = self.outputs
        if self.pipeline:
            hello["pipeline"] = self.pipeline
        done, failed = self.counts() if self.counts else (0, 0)
        if done:
            hello["done"] = done
        if failed:
            hello["failed"] = failed
        self.welcomed = False
        self.opened_at = time.monotonic()
        self.send("HELLO", hello)
        # The broker confirms nothing of an old session: what it did not
        # confirm goes again, in order, before anything sent after it (an
        # ACK must follow its item's outputs on the same socket). What it
        # had stored comes back as duplicates.
        for _, frames in self.unconfirmed.values():
            self._send_frames(frames)
        self.last_heard = time.monotonic()
        self.sessions += 1

    def close(self) -> None:
        if self.sock is None:
            return
        if self.welcomed:
            self.send("BYE", {})
        Brokers.unwatch(self.sock, self.monitor)
        self.monitor = None
        self.sock.close()
        self.sock = None

    def send(self, command: str, header: Mapping[str, Any],
             bodies: Iterable[bytes] = ()) -> None:
        self._send_frames(_zfp.encode(command, header, bodies))

    def _send_frames(self, frames):
        try:
            self.sock.send_multipart(frames, copy=False)
        except zmq.Again:
            pass  # no way to the broker now: what matters is asked again
        self.last_sent = time.monotonic()

    def put(self, seq: int, header: Mapping[str, Any], bodies: Iterable[bytes]) -> None:
        """Sends a PUT and keeps it until confirmed(seq): every new
        session sends the PUTs kept again, in order, before anything
        else (open)."""
        frames = _zfp.encode("PUT", header, bodies)
        self.unconfirmed[seq] = (len(header["items"]), frames)
        self._send_frames(frames)

    def confirmed(self, seq: int) -> None:
        self.unconfirmed.pop(seq, None)

    @property
    def unconfirmed_items(self) -> int:
        """Items in the PUTs not yet confirmed: at most window."""
        return sum(items for items, _ in self.unconfirmed.values())

    # -- receiving ---------------------------------------------------------

    def receive(self, timeout: Optional[float]) -> Optional[Message]:
        """The next message other than the session's own traffic (WELCOME,
        once taken, is given too), as (command, header, bodies), waiting up
        to timeout seconds (None: for ever); None if none came. Answers
        PING, takes WELCOME, opens a
        new session when the broker has forgotten this one or is silent
        past its liveness, and pings when this side has been quiet. Returns
        None at once when the file descriptor wakeup is readable (its owner
        empties it)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.refused is not None:
                raise self.refused
            now = time.monotonic()
            self._awake(now)
            if now - self.last_sent >= self.heartbeat / 1000:
                self.send("PING", {})
            if self.brokers.due(now, self.welcomed, self.last_heard,
                                self.heartbeat * self.liveness / 1000):
                self.open()  # silent too long: the broker is gone, or forgot us
            left = None if deadline is None else max(0.0, deadline - now)
            wait = self.heartbeat / 1000 if left is None else min(left, self.heartbeat / 1000)
            wait = self.brokers.wait(now, self.welcomed, wait)
            poller = zmq.Poller()
            poller.register(self.sock, zmq.POLLIN)
            if self.monitor is not None:
                poller.register(self.monitor, zmq.POLLIN)
            if self.wakeup is not None:
                poller.register(self.wakeup, zmq.POLLIN)
            ready = dict(poller.poll(math.ceil(wait * 1000)))  # 0.4 ms is 1, not a spin
            self._awake(time.monotonic())  # before the owner answers what ended meanwhile
            if self.wakeup is not None and self.wakeup in ready:
                return None  # the owner of wakeup has something to do
            if self.monitor is not None and self.monitor in ready:
                if Brokers.gone(self.monitor.recv_multipart(), self.welcomed):
                    self.brokers.next()  # its broker went away: the next, at once
                    self.open()
                continue
            if self.sock in ready:
                # open() made the socket the poll saw
                frames = self.sock.recv_multipart(copy=True)  # type: ignore[union-attr]
                message = self._take(frames)
                if message is not None:
                    return message
            elif deadline is not None and time.monotonic() >= deadline:
                return None

    def _awake(self, now: float) -> None:
        """At each turn of receive's loop: this side silent past the
        liveness (it pings every heartbeat while its loop runs) has been
        taken for dead by the broker, whatever the broker sent since. A
        stall, noted (stalled), and a new session before anything else is
        sent: an ACK on the old one would be dropped."""
        silent = now - self.last_sent
        if self.welcomed and self.last_sent and silent > self.heartbeat * self.liveness / 1000:
            self.stalled = max(self.stalled, silent)
            self.open()

    def _take(self, frames):
        try:
            command, header, bodies = _zfp.decode(frames)
        except (_zfp.ProtocolError, ValueError) as e:
            raise BrokerError("the broker sent what is not ZFP: %s" % e) from None
        self.last_heard = time.monotonic()
        if command == "WELCOME":
            self.heartbeat = header.get("heartbeat", self.heartbeat)
            self.liveness = header.get("liveness", self.liveness)
            self.window = header.get("window", self.window)
            self.timeout = header.get("timeout", 0)
            self.max_frame = header.get("max_frame", 0)
            self.url_keyed = _keys.told(header)
            self.welcomed = True
            if self.on_open:
                self.on_open()
            return command, header, bodies  # the caller may be waiting for it
        if command == "PING":
            if header.get("reloaded"):
                self.url_keyed = _keys.told(header)
            self.send("PONG", {})
            return None
        if command == "PONG":
            return None
        if command == "ERROR" and refusal(header.get("code"), self.welcomed):
            self.refused = WrongBroker("the broker at %s refused the session: %s"
                                       % (self.endpoint, header.get("reason")))
            raise self.refused
        if command == "ERROR" and header.get("code") == "state" and \
                "before HELLO" in header.get("reason", ""):
            # The broker restarted: a new session, what was asked is asked
            # again. Before WELCOME it may answer this session's own PUTs,
            # its HELLO refused: then once a heartbeat, not HELLO and the
            # PUTs again as fast as the broker answers.
            if self.welcomed or time.monotonic() - self.opened_at >= self.heartbeat / 1000:
                self.open()
            return None
        if command == "ERROR" and header.get("code") == "leader":
            # A broker of a group that does not lead: to the leader it
            # names, or soon to the next while none is elected.
            if self.brokers.redirect(header.get("leader"), time.monotonic()):
                self.open()
            return None
        return command, header, bodies

    def ensure_open(self, timeout: float = 10.0) -> None:
        """Waits for WELCOME (a new session's, after a quiet spell)."""
        if time.monotonic() - self.last_heard > self.heartbeat * self.liveness / 1000 * 0.8:
            self.open()  # the broker may have forgotten us: do not find out by losing a reply
        deadline = time.monotonic() + timeout
        while not self.welcomed:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrokerError("no WELCOME from the broker at %s within %.0f s"
                                  % (self.endpoint, timeout))
            message = self.receive(left)
            if message is not None and message[0] == "ERROR":
                raise BrokerError("the broker refused the session: %s" % message[1].get("reason"))
