"""A function as a processor's program in batch mode (`protocol =
batch`): zflow's processor speaks ZFP, derives the ids and acks; this
reads a line of envelopes from stdin, runs the function on each body
(an async one on all of them at once) and writes one line back, an entry
per item: the list of its outputs, or {"error": REASON}.

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


def _outputs(value):
    if value is None:
        return []
    if inspect.isgenerator(value):
        return list(value)
    return [value]


def _error(e):
    return {"error": "".join(traceback.format_exception_only(type(e), e)).strip()[:1024]}


def serve(fn, stdin=None, stdout=None):
    """Answers lines of envelopes until stdin ends."""
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    loop = None
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        loop = asyncio.new_event_loop()

        async def call(body):
            if inspect.isasyncgenfunction(fn):
                return [v async for v in fn(body)]
            return _outputs(await fn(body))

    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    for line in stdin:
        if not line.strip():
            continue
        envelopes = json.loads(line)
        if loop:
            answers = loop.run_until_complete(asyncio.gather(
                *(call(env["body"]) for env in envelopes), return_exceptions=True))
        else:
            answers = []
            for env in envelopes:
                try:
                    answers.append(_outputs(fn(env["body"])))
                except Exception as e:  # the item failed: its entry says why
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
