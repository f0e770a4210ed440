"""A function as a processor's program in batch mode (`protocol =
batch`): zflow's processor speaks ZFP, derives the ids and acks; this
reads a line of envelopes from stdin, runs the function on each body
(an async one on all of them at once, on one event loop that lives as
long as the program) and writes one line back, an entry per item: the
list of its outputs, or {"error": REASON} for an item that raised
(whatever it raised: one item's failure is that item's only).

    actors
        work
            kind = processor
            command = "python3 -m zflow coprocess mymodule:work"
            protocol = batch
            input = lines
            output = parsed

The function is the same as a worker's (zflow.actor): it takes a body and
returns its output, None for none, or yields several.
"""
import asyncio
import inspect
import json
import sys
import traceback
from typing import IO, Any, Callable, Optional


def _outputs(value):
    if value is None:
        return []
    if inspect.isgenerator(value):
        return list(value)
    return [value]


def _error(e):
    if isinstance(e, SystemExit):
        return {"error": "the function called sys.exit(%r)" % (e.code,)}
    return {"error": "".join(traceback.format_exception_only(type(e), e)).strip()[:1024]}


async def _each(call, envelopes):
    """call on every body at once; an exception in place of a failed one's
    outputs (a BaseException too: it fails its item, not the program)."""
    async def one(body):
        try:
            return await call(body)
        except BaseException as e:  # noqa: BLE001 - the item's failure
            return e
    return await asyncio.gather(*(one(env["body"]) for env in envelopes))


def serve(fn: Callable[[Any], Any], stdin: Optional[IO[bytes]] = None,
          stdout: Optional[IO[bytes]] = None) -> None:
    """Answers lines of envelopes until stdin ends."""
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    loop = None
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        loop = asyncio.new_event_loop()

        async def call(body):
            if inspect.isasyncgenfunction(fn):
                return [v async for v in fn(body)]
            value = fn(body)
            if inspect.isawaitable(value):
                value = await value
            return _outputs(value)

    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    for line in stdin:
        if not line.strip():
            continue
        envelopes = json.loads(line)
        if loop:
            # The gather is made inside the loop, whose futures it then has.
            answers = loop.run_until_complete(_each(call, envelopes))
        else:
            answers = []
            for env in envelopes:
                try:
                    answers.append(_outputs(fn(env["body"])))
                except BaseException as e:  # noqa: BLE001 - the item failed: its entry says why
                    answers.append(e)
        parts = []
        for answer in answers:
            if isinstance(answer, BaseException):
                answer = _error(answer)
            try:
                parts.append(dumps(answer))
            except (TypeError, ValueError) as e:
                parts.append(dumps({"error": "an output is not JSON: %s" % e}))
        stdout.write(("[" + ",".join(parts) + "]\n").encode())
        stdout.flush()
