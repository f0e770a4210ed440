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


def _record_key(what, url):
    """A line "what key url" in JOBS_DIR: the zflow-key the item came with."""
    name = "keys-%d" % os.getpid()
    with open(os.path.join(os.environ["JOBS_DIR"], name), "a") as f:
        f.write("%s %s %s\n" % (what, zflow.current().headers.get("zflow-key", "-"), url))


@zflow.actor(input="urls", output="hosts")
def relay(url):
    """Records the key of each URL it reads; writes a URL of another host."""
    _record_key("in", url)
    return {"url": url.replace("://", "://out.", 1) if "://" in url else url, "n": 1}


@zflow.actor(input="hosts")
def seen(item):
    _record_key("out", item["url"])
