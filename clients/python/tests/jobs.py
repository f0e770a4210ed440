"""Background jobs as a web app would write them: long, async or plain,
with time limits, retries, progress and hooks. Each records what it did
in a file of JOBS_DIR, so that a test can count how often it ran."""
import asyncio
import functools
import os
import time

import zflow


def record(name, text):
    with open(os.path.join(os.environ["JOBS_DIR"], name), "a") as f:
        f.write("%s\n" % text)


@zflow.actor(input="long", output="done")
async def long_async(item):
    await asyncio.sleep(item["seconds"])
    record("long_async", item["n"])
    return item["n"]


@zflow.actor(input="plain", output="done", threads=2)
def long_plain(item):
    time.sleep(item["seconds"])
    record("long_plain", item["n"])
    return item["n"]


@zflow.actor(input="many", output="done", concurrency=50)
async def two_seconds(item):
    record("started", "%d:%.3f" % (item, time.time()))
    await asyncio.sleep(2)
    record("ended", "%d:%.3f" % (item, time.time()))
    return item


@zflow.actor(input="stuck", output="done", timeout=1)
async def stuck_async(item):
    await asyncio.sleep(3600)


@zflow.actor(input="busy", output="done", timeout=1)
def busy_plain(item):
    while True:   # pure Python: the soft limit lands in it
        pass


@zflow.actor(input="blocked", output="done", timeout=1, hard_timeout=2)
def blocked_plain(item):
    record("blocked", os.getpid())
    time.sleep(3600)  # a C call: only the hard limit ends it


@zflow.actor(input="later", output="done")
async def retry_later(item, ctx):
    record("retry_later", "%d:%.3f" % (ctx.attempt, time.time()))
    if ctx.attempt == 1:
        raise zflow.Retry(countdown=2, reason="the service said 503")
    return {"attempt": ctx.attempt, "headers": ctx.headers, "queue": ctx.queue,
            "id": ctx.id, "root": ctx.root}


@zflow.actor(input="report", output="done")
async def with_progress(item):
    ctx = zflow.current()
    ctx.progress(0.25, "a quarter done")
    for _ in range(600):   # until the test has seen it
        if os.path.exists(os.path.join(os.environ["JOBS_DIR"], "seen")):
            break
        await asyncio.sleep(0.05)
    return "finished"


def _inner(n):
    raise KeyError("no row %d" % n)


@zflow.actor(input="broken", output="done")
def broken(item):
    return _inner(item)


session = None


@zflow.on_start
async def open_session():
    global session
    session = {"opened": time.time()}
    record("hooks", "start")


@zflow.on_stop
async def close_session():
    record("hooks", "stop")


@zflow.actor(input="hooked", output="done")
async def uses_session(item):
    return session is not None


@zflow.actor(input="sends", output="done")
def send_email(item):
    record("sent", item)
    time.sleep(0.05)
    return item


@zflow.actor(input="resize", output="resized")
def resize(item):
    if item.get("fail"):
        raise ValueError("cannot resize %d" % item["n"])
    return item["n"] * 2


@zflow.actor(input="exports", output="done")
def export(item):
    return b"x" * item   # a report of item bytes


def traced(fn):
    """A decorator as web apps write them (tracing, Sentry): a plain def
    around the task, functools.wraps kept."""
    @functools.wraps(fn)
    def wrapper(item):
        return fn(item)
    return wrapper


@zflow.actor(input="wrapped", output="done")
@traced
async def wrapped_async(item):
    await asyncio.sleep(0.01)
    return item * 2


class Thumbnails:
    """A task as an object with an async __call__ (it holds its client)."""

    async def __call__(self, item):
        await asyncio.sleep(0.01)
        yield "%s-small" % item
        yield "%s-large" % item


thumbnails = zflow.actor(input="thumbs", output="done")(Thumbnails())


@zflow.actor(input="unawaited", output="done")
def returns_a_coroutine(item):
    return asyncio.sleep(0, result=item)   # a plain def: nothing awaits it


@zflow.actor(input="poison", output="done")
def crash_on_poison(item):
    """Kills its worker process on an item {"poison": true}, as a crash in
    native code or a stray os._exit would."""
    if isinstance(item, dict) and item.get("poison"):
        os._exit(3)
    return item


@zflow.actor(input="held", output="done", threads=1)
def hold_until_released(item):
    """Holds its item 30 s until the file `released` is in JOBS_DIR."""
    if not os.path.exists(os.path.join(os.environ["JOBS_DIR"], "released")):
        record("holding", item)
        time.sleep(30)
    return item


@zflow.actor(input="gate", output="done", threads=1)
def wait_for_release(item):
    """Holds its item until the file `released` is in JOBS_DIR (60 s at
    most): its queue fills up behind it."""
    deadline = time.monotonic() + 60
    while (not os.path.exists(os.path.join(os.environ["JOBS_DIR"], "released"))
           and time.monotonic() < deadline):
        time.sleep(0.05)
    return item


@zflow.actor(input="tasks", output="done", concurrency=8)
def flaky(item):
    """Doubles its item; fails while the file `broken` is in JOBS_DIR."""
    if os.path.exists(os.path.join(os.environ["JOBS_DIR"], "broken")):
        raise RuntimeError("broken for now")
    record("flaky", item)
    return 2 * item


@zflow.actor(input="ticks", output="done", concurrency=4)
def tick(item):
    """Records each firing of a schedule: its job and scheduled time."""
    record("ticks", "%s@%s" % (item["job"], item["scheduled"]))
    return item.get("payload")


def _hold_the_gil(seconds):
    """One call into C that keeps the GIL for about seconds: sum over a
    range, its length measured on this machine first."""
    start = time.monotonic()
    sum(range(1000000))
    per = max(time.monotonic() - start, 1e-4) / 1000000
    return sum(range(int(seconds / per)))


@zflow.actor(input="gil", output="done", threads=1)
def hold_the_gil(item, ctx):
    record("hold_the_gil", ctx.attempt)
    _hold_the_gil(item["seconds"])  # on every attempt, as the same input would
    return item["n"]
