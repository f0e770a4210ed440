"""Workers in Python: a function, plain or async, run on each item of a
queue, its return value (or each value it yields) put on the output queue.

    @zflow.actor(input="tasks", output="answers", concurrency=50)
    async def fetch(item):
        ...

Run by `python -m zflow worker module:fetch --broker tcp://...`, or by
zflow itself as an actor of `kind = exec` whose command is that line (the
broker's endpoint, the actor's name, queues and the settings the pipeline
gives come from ZFLOW_*).

The session with the broker (heartbeats, credit, outputs, acks) is this
process's main thread and never waits for the user's code: an async
function runs on an event loop of its own thread, `concurrency` items at
once, and a plain one on a pool of `threads` threads. Each item is acked,
its outputs sent before its ACK on the one socket, as soon as it is done.
Each output's id is derived from its input's id and its index, so an item
redelivered after a worker died makes the same ids and the broker drops
the copies. Outputs are kept until the broker confirms them and sent
again, in order and before anything else, on every new session.

An item that raises is nacked with the last line of its traceback as the
reason and the traceback as the detail (the queue's retries, then
QUEUE.dead); zflow.Retry asks for a retry after a delay; an item past its
soft time limit gets zflow.TimeLimit raised inside it (an async one is
cancelled), and one past its hard limit ends the process, after its item
was nacked. SIGTERM and SIGINT stop the worker once the items it runs are
done (a second one at once); it says BYE, and the broker gives the items
it held unstarted to other workers at once, no attempt counted.
"""
import asyncio
import collections
import contextvars
import ctypes
import inspect
import os
import queue
import signal
import sys
import threading
import time
import traceback
from typing import (Any, Callable, Deque, Dict, List, NoReturn, Optional, Set, Tuple,
                    TypeVar)

import msgpack
import zmq

from . import _keys, _zfp
from ._durations import seconds
from ._session import BrokerError, Session
from ._types import Curve, Duration, Endpoint

_F = TypeVar("_F", bound=Callable[..., Any])      # an actor's function
_H = TypeVar("_H", bound=Callable[[], Any])       # a hook

REASON_MAX = 1024       # bytes of a NACK's reason (schemas/zfp.md)
DETAIL_MAX = 8192       # bytes of a NACK's detail: the traceback
ACKED_LATE_MAX = 10000  # ids of items acked on a later session, kept
PROGRESS_EVERY = 0.2    # s: a task's progress goes to the broker at most this often
DEFAULT_THREADS = 4
DEFAULT_CONCURRENCY = 8  # async functions; a plain one holds as many items as it has threads
EXIT_HARD_LIMIT = 70     # the process ended an item that passed its hard time limit


class TimeLimit(Exception):
    """Raised inside a task that ran past its worker's soft time limit
    (an async task is cancelled, and this is what its failure says)."""


class Retry(Exception):
    """Raise it in a task to have the item retried no sooner than
    countdown (seconds, or text such as "30s"), reason saying why. It
    counts as an attempt: after the queue's max-attempts, the item is
    dead-lettered."""

    def __init__(self, countdown: Duration = 0,
                 reason: str = "the task asked to be retried") -> None:
        self.countdown = seconds(countdown, "Retry's countdown")
        self.reason = reason
        super().__init__(reason)


class Context:
    """What a task knows of the item it runs: zflow.current() inside the
    task, or the `ctx` parameter of a function that has one."""

    __slots__ = ("id", "attempt", "queue", "headers", "root", "_job")
    id: str                   # the item's, 32 hex digits
    attempt: int              # 1 on the first delivery
    queue: str                # the queue it came from
    headers: Dict[str, str]   # those it was put with
    root: str                 # its lineage's root, 32 hex digits

    def __init__(self, job: "_Job", envelope: Dict[str, Any]) -> None:
        self.id = envelope["id"].hex()
        self.attempt = envelope.get("attempt", 1)
        self.queue = envelope.get("queue", "")
        self.headers = dict(envelope.get("headers") or {})
        self.root = (envelope.get("root") or envelope["id"]).hex()
        self._job = job

    def progress(self, fraction: float, note: str = "") -> None:
        """Publishes how far the task is (0.0 to 1.0) and what it does, for
        `zflow status`, Client.status and GET /messages/ID. Calls more
        often than a few a second are merged: the latest counts."""
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or \
                not 0 <= fraction <= 1:
            raise ValueError("progress is a fraction from 0 to 1, not %r" % (fraction,))
        self._job.worker._progress(self._job, fraction, str(note))

    def retry(self, countdown: Duration = 0,
              reason: str = "the task asked to be retried") -> NoReturn:
        """Raises Retry: the item runs again no sooner than countdown."""
        raise Retry(countdown, reason)

    def __repr__(self) -> str:
        return "Context(id=%s, attempt=%d, queue=%r)" % (self.id, self.attempt, self.queue)


_current: "contextvars.ContextVar[Context]" = contextvars.ContextVar("zflow_task")


def current() -> Context:
    """The Context of the task running in this thread or asyncio task.
    Raises LookupError outside a task."""
    try:
        return _current.get()
    except LookupError:
        raise LookupError("zflow.current() is only known inside a task a worker runs") from None


_hooks: Dict[str, List[Callable[[], Any]]] = {"start": [], "stop": []}


def on_start(fn: _H) -> _H:
    """Runs fn (plain or async) once when a worker starts, before it takes
    any item: open pools and sessions here."""
    _hooks["start"].append(fn)
    return fn


def on_stop(fn: _H) -> _H:
    """Runs fn (plain or async) once when a worker stops, after its last
    item: close what on_start opened."""
    _hooks["stop"].append(fn)
    return fn


def actor(input: str, output: Optional[str] = None, concurrency: Optional[int] = None,
          name: Optional[str] = None, threads: Optional[int] = None,
          timeout: Optional[Duration] = None,
          hard_timeout: Optional[Duration] = None) -> Callable[[_F], _F]:
    """Marks fn as an actor reading input and writing output. concurrency:
    items an async function runs at once (8); threads: threads a plain one
    runs on (4); timeout and hard_timeout: its soft and hard time limits
    (seconds or "5m"). A setting the pipeline gives its actor wins."""
    for what, value in (("timeout", timeout), ("hard_timeout", hard_timeout)):
        seconds(value, what)

    def mark(fn: _F) -> _F:
        marks = {"input": input, "output": output, "concurrency": concurrency, "name": name,
                 "threads": threads, "timeout": timeout, "hard_timeout": hard_timeout}
        fn.zflow_actor = marks  # type: ignore[attr-defined]
        return fn
    return mark


def _is_async(fn):
    """Whether fn runs on the event loop: an async def or async generator,
    also under a decorator that kept functools.wraps, or an object's
    async __call__ (inspect sees neither)."""
    for candidate in (fn, inspect.unwrap(fn), getattr(fn, "__call__", None)):
        if inspect.iscoroutinefunction(candidate) or inspect.isasyncgenfunction(candidate):
            return True
    return False


def _unreadable(body, error):
    """What is wrong with a body that is not one msgpack value, for a
    person: msgpack's own words, or the first byte it stopped at."""
    text = str(error)
    if isinstance(error, msgpack.ExtraData):
        text = "one value and %d bytes more" % len(error.extra)
    elif not text:
        text = "not msgpack (%d bytes, starting 0x%s)" % (len(body), body[:8].hex())
    return "%s: %s" % (type(error).__name__, text)


def _bounded(text, limit, keep_end=False):
    """text cut to at most limit bytes of UTF-8: its start, or its end."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    if keep_end:
        return "...\n" + data[len(data) - limit + 4:].decode("utf-8", "ignore")
    return data[:limit].decode("utf-8", "ignore")


def _interrupt(thread_id, exception):
    """Raises exception in the thread thread_id at its next bytecode (None:
    takes back one not raised yet)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exception) if exception else None)


class HookFailed(Exception):
    """An on_start or on_stop hook raised: the worker ends (python -m
    zflow worker: exit status 1), the hook's traceback in its log."""


class _Stopped(Exception):
    """Stopped before a broker answered."""


class _Failure:
    """How an item failed, as its NACK says."""

    __slots__ = ("reason", "detail", "final", "delay")

    def __init__(self, reason, detail="", final=False, delay=0):
        self.reason = _bounded(reason, REASON_MAX)
        self.detail = _bounded(detail, DETAIL_MAX, keep_end=True)
        self.final = final
        self.delay = delay


class _Job:
    """One delivered item, from DELIVER to its ACK or NACK."""

    __slots__ = ("worker", "env", "body", "ctx", "due", "hard_due", "outcome", "sent", "lock",
                 "thread", "task", "timed_out", "cancelled", "delivered_on")

    def __init__(self, worker, env, body, now):
        self.worker = worker
        self.env = env
        self.body = body                # unpacked
        self.ctx = Context(self, env)
        self.due = now + worker.timeout if worker.timeout else None
        self.hard_due = now + worker.hard_timeout if worker.hard_timeout else None
        self.outcome = None             # packed output bodies, or a _Failure
        self.sent = 0                   # of those outputs, PUT so far
        self.lock = threading.Lock()    # thread and timed_out, between the threads
        self.thread = None              # the pool thread running it
        self.task = None                # the asyncio task running it
        self.timed_out = False          # its soft limit passed
        self.cancelled = False          # its root was cancelled
        self.delivered_on = worker.session.sessions  # the session (its number) that delivered it

    @property
    def root(self):
        return self.env.get("root") or self.env["id"]


def _supervisor():
    """The zflow run that started this process (ZFLOW_SUPERVISOR_PID) and
    our parent's pid then, or None when no zflow run did."""
    try:
        pid = int(os.environ.get("ZFLOW_SUPERVISOR_PID", ""))
    except ValueError:
        return None
    return (pid, os.getppid()) if pid > 1 else None


def _supervisor_gone(pid, parent):
    """True once zflow run has ended: our parent changed (we were its
    child, or a shell's that went with it), or its pid is gone or a zombie."""
    if os.getppid() != parent:
        return True
    try:
        with open("/proc/%d/stat" % pid, "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except FileNotFoundError:
        return os.path.isdir("/proc/self")  # without /proc, only the parent tells
    except (OSError, IndexError):
        return False


class Worker:
    def __init__(self, fn: Callable[..., Any], endpoint: Optional[Endpoint] = None,
                 name: Optional[str] = None, input: Optional[str] = None,
                 output: Optional[str] = None, concurrency: Optional[int] = None,
                 worker: Optional[int] = None, pipeline: Optional[str] = None,
                 curve: Optional[Curve] = None, threads: Optional[int] = None,
                 timeout: Optional[Duration] = None, hard_timeout: Optional[Duration] = None,
                 group: Optional[str] = None) -> None:
        """Settings come from the arguments, else from what the pipeline
        gives (ZFLOW_*, set by zflow run only for the keys it sets), else
        from the function's @zflow.actor, else the defaults. A worker of no
        named group asks the broker which actor of the pipeline reads its
        input, and joins it (run)."""
        marked = getattr(fn, "zflow_actor", {})
        env = os.environ

        def setting(given, variable, key, scale=1):
            if given is not None:
                return given
            if env.get(variable):
                return float(env[variable]) * scale if scale != 1 else env[variable]
            return marked.get(key)

        self.fn = fn
        input = input or env.get("ZFLOW_INPUT") or marked.get("input")
        if not input:
            raise ValueError("the actor %s has no input queue" % (name or fn.__name__))
        self.input: str = input
        self.output: Optional[str] = output or env.get("ZFLOW_OUTPUT") or marked.get("output")
        self.is_async = _is_async(fn)
        self.threads = int(setting(threads, "ZFLOW_THREADS", "threads") or DEFAULT_THREADS)
        concurrency = setting(concurrency, "ZFLOW_CONCURRENCY", "concurrency")
        self.concurrency = int(concurrency or
                               (DEFAULT_CONCURRENCY if self.is_async else self.threads))
        if self.threads < 1 or self.concurrency < 1:
            raise ValueError("threads and concurrency must be at least 1")
        self.timeout = seconds(setting(timeout, "ZFLOW_TIMEOUT", "timeout", 0.001), "timeout")
        self.hard_timeout = seconds(setting(hard_timeout, "ZFLOW_HARD_TIMEOUT", "hard_timeout",
                                            0.001), "hard_timeout")
        if self.timeout and self.hard_timeout and self.hard_timeout <= self.timeout:
            raise ValueError("hard_timeout (%g s) must be longer than timeout (%g s)"
                             % (self.hard_timeout, self.timeout))
        self.limits_given = (self.timeout, self.hard_timeout)
        self.group = group or name or env.get("ZFLOW_ACTOR") or marked.get("name")
        self.endpoint = endpoint or env.get("ZFLOW_ENDPOINT") or "tcp://127.0.0.1:5670"
        self.pipeline = pipeline or env.get("ZFLOW_PIPELINE")
        self.worker_number = int(worker if worker is not None else env.get("ZFLOW_WORKER", 0))
        self.curve = curve
        try:
            self.takes_ctx = "ctx" in inspect.signature(fn).parameters
        except (TypeError, ValueError):
            self.takes_ctx = False
        self.session: Optional[Session] = None
        # the session's own: term() waits until what it sent is out
        self.context: Optional[zmq.Context] = None
        # the event loop's, for async functions and hooks
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.loop_thread: Optional[threading.Thread] = None
        self.pool: List[threading.Thread] = []  # the threads of a plain function
        self.work: "queue.SimpleQueue[Optional[_Job]]" = queue.SimpleQueue()  # for the pool
        self.lock = threading.Lock()   # finished, notes, signalled
        # jobs done, to be answered in this order
        self.finished: Deque[_Job] = collections.deque()
        self.notes: Dict[_Job, Tuple[float, str]] = {}  # job -> (fraction, note): to send
        self.signalled = False         # a byte is in the wake-up pipe
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_read, False)
        os.set_blocking(self.wake_write, False)
        self.running: Dict[bytes, _Job] = {}  # id -> job: delivered, not answered yet
        self.held: List[_Job] = []     # jobs delivered while stopping: handed back by BYE
        # jobs done, their outputs and answers to send
        self.outbox: Deque[_Job] = collections.deque()
        self.progress_sent: Dict[bytes, float] = {}  # id -> when its progress last went
        self.cancelled: Set[bytes] = set()  # roots the broker cancelled
        # Items done here whose ACK went on a later session than the one
        # that delivered them: the broker had taken them back (it took
        # this worker for lost, or restarted) and drops that ACK as late.
        # Delivered again, they are answered at once: their outputs are
        # stored already (a new session sends its unconfirmed PUTs first).
        self.acked_late: "collections.OrderedDict[bytes, None]" = collections.OrderedDict()
        self.seq = 0                   # the last PUT's; the session keeps those unconfirmed
        self.stopping = False
        self.stop_now = False
        self.next_check = 0.0          # when the time limits are looked at next
        self.supervisor = _supervisor()  # (pid, parent pid) of the zflow run it serves, or None
        self.next_watch = 0.0          # when the supervisor is looked at next
        self.done = 0
        self.failed = 0

    @property
    def name(self) -> str:
        return "%s/%d" % (self.group or self.fn.__name__, self.worker_number)

    def _log(self, text):
        print("zflow worker %s: %s" % (self.name, text), file=sys.stderr, flush=True)

    def _stalled(self, seconds):
        """Said when the session went unserved past the broker's liveness:
        not the broker's fault, and what the worker held is given to
        others (docs/python.md, "A call that holds the GIL")."""
        session = self.session
        self._log("this process was silent for %.1f s, as it did not run (a call that held "
                  "Python's GIL, or the process was stopped): past the %.1f s the broker waits for "
                  "a silent worker (heartbeat x liveness), which takes such a worker for lost and "
                  "runs its items again; give such a call a process of its own, or raise "
                  "heartbeat or liveness" % (seconds, session.heartbeat * session.liveness / 1000))

    def stop(self, *_: object) -> None:
        """Stops after the items running (a second call: at once). It is
        the SIGTERM handler, run on the main thread between two of its
        bytecodes, maybe while that thread holds self.lock: it takes no
        lock, and only writes to the wake-up pipe."""
        if self.stopping:
            self.stop_now = True
        self.stopping = True
        self._poke()

    # -- between the threads -------------------------------------------------

    def _post(self, job, outcome):
        """A thread's or the loop's: job is done (outcome: its packed
        outputs, or a _Failure)."""
        job.outcome = outcome
        with self.lock:
            self.finished.append(job)
            first = not self.signalled
            self.signalled = True
        if first:
            self._poke()

    def _progress(self, job, fraction, note):
        with self.lock:
            self.notes[job] = (fraction, note)
            first = not self.signalled
            self.signalled = True
        if first:
            self._poke()

    def _poke(self):
        """Wakes the main thread from its poll (once for what is posted
        until it looks: self.signalled)."""
        try:
            os.write(self.wake_write, b"\0")
        except OSError:
            pass  # the pipe is full (the main thread is woken already), or closed

    def _woken(self):
        """What the other threads posted: (finished jobs, progress notes)."""
        try:
            while os.read(self.wake_read, 4096):
                pass
        except BlockingIOError:
            pass
        with self.lock:
            self.signalled = False
            finished, self.finished = self.finished, collections.deque()
            notes, self.notes = self.notes, {}
        return finished, notes

    # -- running an item -----------------------------------------------------

    def _args(self, job):
        return ((job.body,), {"ctx": job.ctx}) if self.takes_ctx else ((job.body,), {})

    def _outcome(self, values):
        """The packed outputs of what fn gave, or a _Failure saying why not.
        An output larger than a frame fails its item: the broker would
        reset the connection on its PUT, which every new session sends
        again, and the worker would never be heard from again."""
        if values and not self.output:
            return _Failure("the actor has no output queue, and the task returned a value",
                            final=True)
        try:
            bodies = [_zfp.pack(v) for v in values]
        except (TypeError, ValueError, OverflowError) as e:
            return _Failure("an output is not msgpack: %s: %s" % (type(e).__name__, e),
                            final=True)
        limit = (self.session.max_frame if self.session else 0) or _zfp.FRAME_MAX
        for index, body in enumerate(bodies):
            if len(body) > limit:
                return _Failure("output %d is %d bytes of msgpack, more than the broker takes "
                                "(max-frame, %d)" % (index, len(body), limit),
                                final=True)
        return bodies

    @staticmethod
    def _unawaited(value):
        """The _Failure of a plain function that returned an awaitable: a
        pool thread has no loop to await it on, and packing it would say
        only "can not serialize 'coroutine' object"."""
        if inspect.iscoroutine(value):
            value.close()  # and no "never awaited" warning
        return _Failure("the function returned %s, which nothing awaits: a plain function runs on "
                        "a thread; make it async def (under a decorator, keep functools.wraps)"
                        % type(value).__name__, final=True)

    @staticmethod
    def _values(value):
        if value is None:
            return []
        if inspect.isgenerator(value):
            return list(value)
        return [value]

    def _failure(self, job, e):
        """The _Failure of an exception a task raised, logged."""
        if isinstance(e, Retry):
            self._log("item %s (attempt %d) asked to be retried in %g s: %s"
                      % (job.ctx.id, job.ctx.attempt, e.countdown, e.reason))
            return _Failure(e.reason, delay=int(e.countdown * 1000))
        if isinstance(e, TimeLimit) or (job.timed_out and
                                        isinstance(e, asyncio.CancelledError)):
            reason = "zflow.TimeLimit: the task ran past its time limit of %g s" % self.timeout
            detail = "".join(traceback.format_exception(type(e), e, e.__traceback__))
            self._log("item %s (attempt %d): %s" % (job.ctx.id, job.ctx.attempt, reason))
            return _Failure(reason, detail)
        reason = "".join(traceback.format_exception_only(type(e), e)).strip()
        if isinstance(e, SystemExit):
            reason = "the task called sys.exit(%r)" % (e.code,)
        detail = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        self._log("item %s (attempt %d) failed:\n%s" % (job.ctx.id, job.ctx.attempt,
                                                        detail.rstrip()))
        return _Failure(reason, detail)

    def _run_sync(self, job):
        """A pool thread's: runs job to its outcome, which it posts."""
        outcome = None
        try:
            with job.lock:
                if job.timed_out:
                    outcome = _Failure("zflow.TimeLimit: the item waited past its time limit "
                                       "of %g s for a thread" % self.timeout)
                elif not job.cancelled:
                    job.thread = threading.get_ident()
            if outcome is None and job.cancelled:
                outcome = []
            if outcome is None:
                _current.set(job.ctx)
                try:
                    args, kwargs = self._args(job)
                    value = self.fn(*args, **kwargs)
                    if inspect.isawaitable(value):
                        outcome = self._unawaited(value)
                    else:
                        outcome = self._outcome(self._values(value))
                except BaseException as e:  # the item's failure, whatever it is
                    outcome = self._failure(job, e)
                finally:
                    with job.lock:
                        job.thread = None
                        _interrupt(threading.get_ident(), None)  # one aimed, not yet landed
        except TimeLimit as e:  # landed after the function returned
            if outcome is None:
                outcome = self._failure(job, e)
        self._post(job, outcome)

    def _pool_main(self):
        while True:
            job = self.work.get()
            if job is None:
                return
            self._run_sync(job)

    async def _run_async(self, job):
        """The loop's: runs job to its outcome, which it posts."""
        _current.set(job.ctx)
        try:
            args, kwargs = self._args(job)
            value = self.fn(*args, **kwargs)
            if inspect.isasyncgen(value):
                values = [v async for v in value]
            else:
                if inspect.isawaitable(value):
                    value = await value
                values = self._values(value)
            outcome = self._outcome(values)
        except asyncio.CancelledError as e:
            outcome = [] if job.cancelled and not job.timed_out else self._failure(job, e)
        except BaseException as e:  # the item's failure, whatever it is
            outcome = self._failure(job, e)
        self._post(job, outcome)

    def _spawn(self, jobs):
        """The loop's: starts a task for each job."""
        for job in jobs:
            if job.timed_out or job.cancelled:
                self._post(job, [] if job.cancelled else _Failure(
                    "zflow.TimeLimit: the item waited past its time limit of %g s" % self.timeout))
            else:
                job.task = self.loop.create_task(self._run_async(job))

    @staticmethod
    def _cancel_task(job):
        """The loop's: after _spawn, which sees the flags set before this
        was called, so a task is cancelled or never started."""
        if job.task is not None:
            job.task.cancel()

    def _start(self, jobs):
        if self.is_async:
            self.loop.call_soon_threadsafe(self._spawn, jobs)
        else:
            for job in jobs:
                self.work.put(job)

    # -- the session's side --------------------------------------------------

    def _on_open(self):
        # The session has sent its unconfirmed PUTs again (Session.open).
        self.session.send("CREDIT", {"credit": self.concurrency})
        if not self.limits_given[0] and not self.limits_given[1] and self.session.timeout:
            # Below the broker's: it gives the item to another worker at its timeout.
            self.timeout = self.session.timeout / 1000 * 0.9
            self.hard_timeout = self.session.timeout / 1000 * 0.95
        elif not self.limits_given[1] and self.session.timeout:
            queue_timeout = self.session.timeout / 1000
            if self.timeout < queue_timeout:
                self.hard_timeout = max(queue_timeout * 0.95,
                                        self.timeout + (queue_timeout - self.timeout) / 2)

    def _deliver(self, header, bodies):
        now = time.monotonic()
        jobs = []
        for env, body in zip(header.get("items", []), bodies):
            if (env.get("root") or env["id"]) in self.cancelled:
                self.session.send("ACK", {"ids": [env["id"]]})  # its lineage was cancelled
                continue
            if env["id"] in self.running:
                continue  # delivered again while it runs here: answered once, when done
            if env["id"] in self.acked_late:
                del self.acked_late[env["id"]]
                self._log("item %s: done here before the broker took it back; answered "
                          "again, not run again" % env["id"].hex())
                self.session.send("ACK", {"ids": [env["id"]]})
                continue
            try:
                value = _zfp.unpack(body)
            except Exception as e:  # not msgpack, or text that is not UTF-8
                self.failed += 1
                reason = "the item's body cannot be read: %s" % _unreadable(body, e)
                self._log("item %s: %s" % (env["id"].hex(), reason))
                self.session.send("NACK", {"id": env["id"], "final": True,
                                           "reason": _bounded(reason, REASON_MAX)})
                continue
            job = _Job(self, env, value, now)
            self.running[env["id"]] = job
            jobs.append(job)
        if not jobs:
            return
        if self.stopping:
            self.held += jobs  # BYE hands them back, no attempt counted
        else:
            self._start(jobs)

    def _dispatch(self, command, header, bodies):
        if command == "CONFIRM":
            self.session.confirmed(header.get("seq"))
        elif command == "CANCEL":
            root = header.get("id")
            self.cancelled.add(root)
            for job in self.running.values():
                if job.root == root:
                    job.cancelled = True
                    if self.is_async:
                        self.loop.call_soon_threadsafe(self._cancel_task, job)
        elif command == "DELIVER":
            self._deliver(header, bodies)
        elif command == "ERROR":
            self._log("the broker says %s: %s" % (header.get("code"), header.get("reason")))

    def _limits(self, now):
        """Soft and hard time limits of the items running, a few times a
        second."""
        if now < self.next_check or not (self.timeout or self.hard_timeout):
            return
        self.next_check = now + 0.1
        for job in list(self.running.values()):
            if job.outcome is not None:
                continue
            if job.hard_due is not None and now >= job.hard_due:
                self._hard_stop(job)
            if job.due is not None and now >= job.due and not job.timed_out:
                with job.lock:
                    job.timed_out = True
                    if job.thread is not None:
                        _interrupt(job.thread, TimeLimit)
                if self.is_async:
                    self.loop.call_soon_threadsafe(self._cancel_task, job)

    def _hard_stop(self, job):
        """job ran past the hard limit: nacked, and the process ends (a
        thread cannot be stopped); the broker hands the rest on."""
        reason = ("the task ran past its hard time limit of %g s; its worker process ended"
                  % self.hard_timeout)
        self._log("item %s (attempt %d): %s" % (job.ctx.id, job.ctx.attempt, reason))
        self._flush()
        self.session.send("NACK", {"id": job.env["id"], "reason": reason})
        self.session.close()  # BYE: what else it held goes back at once
        # os._exit does not wait for ZeroMQ's I/O thread: what it had not
        # written yet (the NACK, BYE, the outputs and ACKs just flushed)
        # would be lost, and the broker would say "worker lost".
        self.context.term()   # once all of it is sent, or after LINGER
        os._exit(EXIT_HARD_LIMIT)

    def _answer(self, finished):
        """Moves finished jobs to the outbox, in the order they finished."""
        for job in finished:
            if job.env["id"] not in self.running:
                continue
            if job.cancelled or job.root in self.cancelled:
                # Acked, its outputs not sent (they would be dropped), even
                # when it failed: a NACK would have it retried.
                job.outcome = []
            elif isinstance(job.outcome, _Failure):
                self.failed += 1
            self.outbox.append(job)

    def _flush(self):
        """Sends the outbox's outputs (as the window allows) and then the
        answers of the items whose outputs all went."""
        room = self.session.window - self.session.unconfirmed_items
        items, packed, acks, nacks = [], [], [], []

        def put():
            self.seq += 1
            self.session.put(self.seq, {"seq": self.seq, "items": items[:]}, packed[:])
            items.clear()
            packed.clear()

        while self.outbox:
            job = self.outbox[0]
            if isinstance(job.outcome, _Failure):
                nacks.append(job)
            else:
                while job.sent < len(job.outcome) and room > 0:
                    env = job.env
                    out = {"id": _zfp.output_id(env["id"], self.group, job.sent),
                           "queue": self.output, "ts": int(time.time() * 1000),
                           "parent": env["id"], "root": job.root}
                    for key in ("group", "headers"):
                        if key in env:
                            out[key] = env[key]
                    if self.output in self.session.url_keyed:
                        _keys.key_items([out], lambda _: _keys.packed_url(
                            job.outcome[job.sent]), self.session.url_keyed)
                    items.append(out)
                    packed.append(job.outcome[job.sent])
                    job.sent += 1
                    room -= 1
                    if len(items) == _zfp.BATCH_MAX:
                        put()
                if job.sent < len(job.outcome):
                    break  # the rest once the broker confirms what it holds
                acks.append(job)
                if job.delivered_on != self.session.sessions:
                    self.acked_late[job.env["id"]] = None
                    while len(self.acked_late) > ACKED_LATE_MAX:
                        self.acked_late.popitem(last=False)
            self.outbox.popleft()
        if items:
            put()
        for first in range(0, len(acks), _zfp.IDS_MAX):
            ids = [job.env["id"] for job in acks[first:first + _zfp.IDS_MAX]]
            self.session.send("ACK", {"ids": ids})
        for job in nacks:
            failure = job.outcome
            header = {"id": job.env["id"], "reason": failure.reason}
            if failure.detail:
                header["detail"] = failure.detail
            if failure.final:
                header["final"] = True
            if failure.delay:
                header["delay"] = min(failure.delay, 0xFFFFFFFF)
            self.session.send("NACK", header)
        for job in acks + nacks:
            self.running.pop(job.env["id"], None)
            self.progress_sent.pop(job.env["id"], None)
        self.done += len(acks)

    def _notes(self, notes, now):
        """Sends the latest progress of each running job, a few a second."""
        for job, (fraction, note) in notes.items():
            key = job.env["id"]
            if key not in self.running or job.outcome is not None:
                continue
            if now - self.progress_sent.get(key, 0) < PROGRESS_EVERY:
                with self.lock:
                    self.notes.setdefault(job, (fraction, note))  # sent on a later turn
                continue
            self.progress_sent[key] = now
            header = {"id": key, "progress": int(round(fraction * 1000))}
            if note:
                header["note"] = _bounded(note, REASON_MAX)
            self.session.send("PROGRESS", header)

    # -- starting and stopping -----------------------------------------------

    def _start_threads(self):
        if self.is_async or any(inspect.iscoroutinefunction(h)
                                for h in _hooks["start"] + _hooks["stop"]):
            self.loop = asyncio.new_event_loop()
            self.loop_thread = threading.Thread(target=self._loop_main, name="zflow-loop",
                                                daemon=True)
            self.loop_thread.start()
        if not self.is_async:
            for number in range(min(self.threads, self.concurrency)):
                thread = threading.Thread(target=self._pool_main, daemon=True,
                                          name="zflow-pool-%d" % number)
                thread.start()
                self.pool.append(thread)

    def _loop_main(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def _hooks(self, which):
        """Runs the on_start or on_stop hooks. One that raises is named,
        its traceback logged: a ValueError of its own is not taken for a
        bad command line, nor a KeyError shown as the worker's."""
        for hook in _hooks[which]:
            try:
                if inspect.iscoroutinefunction(hook):
                    asyncio.run_coroutine_threadsafe(hook(), self.loop).result()
                else:
                    hook()
            except Exception as e:  # noqa: BLE001 - whatever the user's code raises
                what = "@zflow.on_%s %s" % (which, getattr(hook, "__qualname__", hook))
                self._log("%s failed:\n%s" % (what, "".join(traceback.format_exception(
                    type(e), e, e.__traceback__)).rstrip()))
                raise HookFailed("%s failed: %s" % (what, "".join(
                    traceback.format_exception_only(type(e), e)).strip())) from None

    def _stop_threads(self):
        for _ in self.pool:
            self.work.put(None)
        for thread in self.pool:
            thread.join(timeout=1)
        if self.loop is not None:
            async def quiet():
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            try:
                asyncio.run_coroutine_threadsafe(quiet(), self.loop).result(timeout=2)
            except Exception:  # noqa: BLE001 - tasks that will not end: left to the exit
                pass
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.loop_thread.join(timeout=2)
            if not self.loop.is_running():
                self.loop.close()

    def _join_group(self):
        """The name of the actor of the pipeline that reads this worker's
        input, asked of the broker; a worker named by nobody joins it
        rather than making a group of its own, which would be given a
        copy of every item."""
        probe = Session(self.endpoint, "python-worker", pipeline=self.pipeline,
                        curve=self.curve)
        try:
            self._welcome(probe)
            probe.send("STATUS", {})
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                message = probe.receive(1.0)
                if message and message[0] == "REPORT" and "id" not in message[1]:
                    break
                if message and message[0] == "ERROR":
                    raise BrokerError("the broker refused the worker: %s"
                                      % message[1].get("reason"))
            else:
                raise BrokerError("the broker at %s did not answer STATUS" % probe.endpoint)
        finally:
            probe.close()
        report = message[1]
        queues = [q.get("name") for q in report.get("queues") or []]
        if queues and self.input not in queues:
            raise ValueError("the pipeline has no queue %r (it has %s): give the input of one "
                             "of its actors" % (self.input, ", ".join(sorted(queues))))
        actors = sorted({g.get("name") for g in report.get("groups") or []
                         if g.get("queue") == self.input and g.get("declared") and g.get("name")})
        if len(actors) > 1:
            raise ValueError("the queue %r is read by the actors %s, each given every item: "
                             "give --group NAME to join one (a new name makes a new group, "
                             "which gets a copy of every item)" % (self.input, ", ".join(actors)))
        return actors[0] if actors else self.fn.__name__

    def _welcome(self, session):
        """Waits for the session's WELCOME, saying so while no broker answers."""
        said = time.monotonic()
        while not session.welcomed:
            if self.stopping:
                raise _Stopped()
            if self.supervisor and _supervisor_gone(*self.supervisor):
                # Its broker was likely zflow run's own: nothing will answer.
                self._log("zflow run (pid %d) is gone: stopping" % self.supervisor[0])
                raise _Stopped()
            message = session.receive(0.5)
            if message is not None and message[0] == "ERROR":
                raise BrokerError("the broker refused the worker: %s" % message[1].get("reason"))
            if not session.welcomed and time.monotonic() - said >= 5:
                self._log("no broker answers at %s; still trying" % session.endpoint)
                said = time.monotonic() + 55  # then once a minute

    def run(self) -> None:
        """Serves the input until SIGTERM or SIGINT (or stop())."""
        signals = (signal.SIGTERM, signal.SIGINT)
        previous = [signal.signal(s, self.stop) for s in signals]
        try:
            if not self.group:
                try:
                    self.group = self._join_group()
                except _Stopped:
                    return
            self._start_threads()
            self._hooks("start")
            self.context = zmq.Context()
            self.session = Session(self.endpoint, self.group, [self.input],
                                   [self.output] if self.output else [],
                                   pipeline=self.pipeline, worker=self.worker_number,
                                   context=self.context, curve=self.curve)
            self.session.on_open = self._on_open
            self.session.wakeup = self.wake_read
            self.session.counts = lambda: (self.done, self.failed)
            self._serve()
            self._hooks("stop")
        finally:
            for s, handler in zip(signals, previous):
                signal.signal(s, handler)
            if self.session is not None:
                self.session.close()
                self.context.term()  # type: ignore[union-attr]  # BYE goes before the end
            self._stop_threads()
            os.close(self.wake_read)
            os.close(self.wake_write)

    def _serve(self):
        said = started = time.monotonic()
        while True:
            now = time.monotonic()
            if self.stop_now or (self.stopping and len(self.running) == len(self.held)):
                break
            if self.supervisor and now >= self.next_watch:
                self.next_watch = now + 0.5
                gone = _supervisor_gone(*self.supervisor)
            else:
                gone = False
            if gone:
                # Nobody restarts or stops it now: BYE hands back what it
                # holds, and the process ends rather than serve alone.
                self._log("zflow run (pid %d) is gone: stopping, handing back %d items"
                          % (self.supervisor[0], len(self.running)))
                self.stop_now = True
                break
            wait = 0.1 if (self.timeout or self.hard_timeout or self.stopping) else 1.0
            message = self.session.receive(wait)
            if self.session.stalled:
                self._stalled(self.session.stalled)
                self.session.stalled = 0.0
                said = time.monotonic()  # the broker does answer: a new session follows
            if message is not None:
                self._dispatch(*message)
            finished, notes = self._woken()
            self._answer(finished)
            now = time.monotonic()
            self._limits(now)
            if self.outbox:
                self._flush()
            if notes:
                self._notes(notes, now)
            if not self.session.welcomed and now - said >= 5 and now - started >= 5:
                self._log("no broker answers at %s; still trying" % self.session.endpoint)
                said = now + 55
        # What is unconfirmed is the broker's to confirm; BYE hands back the rest.
        deadline = time.monotonic() + 5
        while self.session.unconfirmed and time.monotonic() < deadline and not self.stop_now:
            message = self.session.receive(0.2)
            if message is not None:
                self._dispatch(*message)
            self._flush()
        if self.session.unconfirmed:
            self._log("%d outputs not confirmed by the broker at %s"
                      % (self.session.unconfirmed_items, self.session.endpoint))
