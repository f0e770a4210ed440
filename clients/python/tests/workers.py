"""The functions the tests run as workers."""
import asyncio
import os

import zflow


@zflow.actor(input="tasks", output="answers", concurrency=8)
def double(item):
    if item == "fail":
        raise RuntimeError("asked to fail")
    return 2 * item


@zflow.actor(input="tasks", output="answers", concurrency=16)
async def slow_double(item):
    await asyncio.sleep(0.01)
    return 2 * item


@zflow.actor(input="numbers", output="copies", concurrency=32)
def copy(item):
    return item


def parse(item):
    """A step of the stream benchmark's shape: a JSON line's fields."""
    if item.get("fail"):
        raise ValueError("bad item %d" % item["n"])
    return {"n": item["n"], "size": len(item.get("text", ""))}


async def parse_async(item):
    """parse, as an async function: a coprocess runs a line's at once."""
    await asyncio.sleep(0)
    if item.get("exit"):
        raise SystemExit(3)
    return parse(item)


@zflow.actor(input="tasks", output="answers", concurrency=4)
def tick(item):
    """Records each firing of a schedule in the file $ZFLOW_TEST_TICKS."""
    with open(os.environ["ZFLOW_TEST_TICKS"], "a") as f:
        f.write("%s\n" % item["scheduled"])
    return 0
