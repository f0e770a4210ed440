"""Workers in Python: a function, plain or async, run on each item of a
queue, its return value (or each value it yields) put on the output queue.

    @zflow.actor(input="tasks", output="answers", concurrency=8)
    async def double(n):
        return 2 * n

Run by `python -m zflow worker module:double --broker tcp://...`, or by
zflow itself as an actor of `kind = exec` whose command is that line (the
broker's endpoint, the actor's name and queues then come from ZFLOW_*).

Each output's id is derived from its input's id and its index, so an item
redelivered after a worker died makes the same ids and the broker drops
the copies; an item is acked only after its outputs were sent, on the
same socket. Outputs are kept until the broker confirms them and sent
again, in order and before anything else, on every new session (the
broker restarted, a new leader, a session found dead). An exception nacks the item with its text as the reason (the
queue's retries, then QUEUE.dead). SIGTERM and SIGINT stop the worker
after the items in hand; it says BYE, and the broker gives what it held
to other workers at once.
"""
import asyncio
import inspect
import os
import signal
import sys
import time
import traceback

from . import _zfp
from ._session import Session


def actor(input, output=None, concurrency=8, name=None):
    """Marks fn as an actor reading input and writing output, holding
    concurrency items at once (async functions run that many at a time)."""
    def mark(fn):
        fn.zflow_actor = {"input": input, "output": output, "concurrency": concurrency,
                          "name": name or fn.__name__}
        return fn
    return mark


class Worker:
    def __init__(self, fn, endpoint=None, name=None, input=None, output=None, concurrency=None,
                 worker=None, pipeline=None, curve=None):
        marked = getattr(fn, "zflow_actor", {})
        env = os.environ
        self.fn = fn
        self.input = input or env.get("ZFLOW_INPUT") or marked.get("input")
        self.output = output or env.get("ZFLOW_OUTPUT") or marked.get("output")
        self.concurrency = int(concurrency or env.get("ZFLOW_CONCURRENCY") or
                               marked.get("concurrency") or 8)
        name = name or env.get("ZFLOW_ACTOR") or marked.get("name") or fn.__name__
        endpoint = endpoint or env.get("ZFLOW_ENDPOINT") or "tcp://127.0.0.1:5670"
        if not self.input:
            raise ValueError("the actor %s has no input queue" % name)
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)
        self.loop = asyncio.new_event_loop() if self.is_async else None
        self.session = Session(endpoint, name, [self.input],
                               [self.output] if self.output else [],
                               pipeline=pipeline or env.get("ZFLOW_PIPELINE"),
                               worker=int(worker if worker is not None else
                                          env.get("ZFLOW_WORKER", 0)),
                               curve=curve)
        self.session.on_open = self._on_open
        self.stopping = False
        self.cancelled = set()  # roots the broker cancelled
        self.seq = 0            # the last PUT's; the session keeps those unconfirmed
        self.done = 0
        self.failed = 0

    def _on_open(self):
        # The session has sent its unconfirmed PUTs again (Session.open).
        self.session.send("CREDIT", {"credit": self.concurrency})

    def stop(self, *_):
        self.stopping = True

    # -- running an item ---------------------------------------------------

    def _outputs(self, value):
        """The outputs of what fn gave: none for None, each of a generator."""
        if value is None:
            return []
        if inspect.isgenerator(value):
            return list(value)
        return [value]

    async def _call_async(self, body):
        if inspect.isasyncgenfunction(self.fn):
            return [v async for v in self.fn(body)]
        value = self.fn(body)
        if inspect.isawaitable(value):
            value = await value
        return self._outputs(value)

    def _run_batch(self, items):
        """Runs fn on each (envelope, body); returns (envelope, outputs or
        an exception) in order."""
        bodies = [_zfp.unpack(body) for _, body in items]
        if self.is_async:
            async def all_of():
                return await asyncio.gather(*(self._call_async(b) for b in bodies),
                                            return_exceptions=True)
            answers = self.loop.run_until_complete(all_of())
        else:
            answers = []
            for body in bodies:
                try:
                    answers.append(self._outputs(self.fn(body)))
                except Exception as e:  # the item failed: nacked below
                    answers.append(e)
        return [(env, answer) for (env, _), answer in zip(items, answers)]

    def _handle(self, items):
        outputs, packed, acks = [], [], []
        for env, answer in self._run_batch(items):
            if isinstance(answer, BaseException):
                self.failed += 1
                reason = "".join(traceback.format_exception_only(type(answer), answer)).strip()
                self.session.send("NACK", {"id": env["id"], "reason": reason[:1024]})
                continue
            if answer and not self.output:
                self.failed += 1
                self.session.send("NACK", {"id": env["id"], "final": True,
                                           "reason": "the actor has no output queue"})
                continue
            try:
                bodies = [_zfp.pack(v) for v in answer]
            except (TypeError, ValueError) as e:
                self.failed += 1
                self.session.send("NACK", {"id": env["id"],
                                           "reason": "an output is not msgpack: %s" % e})
                continue
            for index, body in enumerate(bodies):
                out = {"id": _zfp.child_id(env["id"], index), "queue": self.output,
                       "ts": int(time.time() * 1000), "parent": env["id"],
                       "root": env.get("root") or env["id"]}
                for key in ("group", "headers"):
                    if key in env:
                        out[key] = env[key]
                outputs.append(out)
                packed.append(body)
            acks.append(env["id"])
        for first in range(0, len(outputs), _zfp.BATCH_MAX):
            self._wait_for_window(len(outputs[first:first + _zfp.BATCH_MAX]))
            self.seq += 1
            self.session.put(self.seq, {"seq": self.seq,
                                        "items": outputs[first:first + _zfp.BATCH_MAX]},
                             packed[first:first + _zfp.BATCH_MAX])
        for first in range(0, len(acks), _zfp.IDS_MAX):
            self.session.send("ACK", {"ids": acks[first:first + _zfp.IDS_MAX]})
        self.done += len(acks)

    def _wait_for_window(self, more):
        while self.session.unconfirmed_items + more > self.session.window:
            message = self.session.receive(1.0)
            if message:
                self._dispatch(*message)

    # -- the loop ----------------------------------------------------------

    def _dispatch(self, command, header, bodies):
        if command == "WELCOME":
            return  # the session's: CREDIT went with it
        if command == "CONFIRM":
            self.session.confirmed(header.get("seq"))
        elif command == "CANCEL":
            self.cancelled.add(header.get("id"))
        elif command == "DELIVER":
            items = list(zip(header.get("items", []), bodies))
            # An item whose lineage was cancelled is acked without running.
            dropped = [env["id"] for env, _ in items
                       if (env.get("root") or env["id"]) in self.cancelled]
            if dropped:
                self.session.send("ACK", {"ids": dropped})
            items = [(env, body) for env, body in items if env["id"] not in dropped]
            if items:
                self._handle(items)

    def run(self):
        """Serves the input until SIGTERM or SIGINT (or stop())."""
        previous = [signal.signal(s, self.stop) for s in (signal.SIGTERM, signal.SIGINT)]
        try:
            while not self.stopping:
                message = self.session.receive(0.2)
                if message:
                    self._dispatch(*message)
            # What is unconfirmed is the broker's to confirm; BYE hands back the rest.
            deadline = time.monotonic() + 5
            while self.session.unconfirmed and time.monotonic() < deadline:
                message = self.session.receive(0.2)
                if message and message[0] == "CONFIRM":
                    self.session.confirmed(message[1].get("seq"))
            if self.session.unconfirmed:
                print("zflow worker %s: %d outputs not confirmed by the broker at %s"
                      % (self.session.name, self.session.unconfirmed_items,
                         self.session.endpoint), file=sys.stderr)
        finally:
            for s, handler in zip((signal.SIGTERM, signal.SIGINT), previous):
                signal.signal(s, handler)
            self.session.close()
            if self.loop:
                self.loop.close()
