"""Workers for the flow-control tests: each records when it starts and
ends an item, in a file of JOBS_DIR of its own process, so that a test
reads what the workers saw rather than what the broker says."""
import asyncio
import os
import time

import zflow


def _record(what, item):
    name = "flow-%s-%d" % (os.environ.get("ZFLOW_TEST_HOST", "here"), os.getpid())
    with open(os.path.join(os.environ["JOBS_DIR"], name), "a") as f:
        f.write("%s %.6f %s %d\n" % (what, time.time(), item["key"], item["n"]))


@zflow.actor(input="jobs", concurrency=16)
async def paced(item):
    """Holds each item item["ms"] milliseconds."""
    _record("start", item)
    await asyncio.sleep(item.get("ms", 0) / 1000.0)
    _record("end", item)
