#!/usr/bin/python3
"""The Python step of bench/python, and its peers.

    python_step.py make PATH N              N JSON lines of about 1 KB
    python_step.py plain PATH OUT           a plain-Python async generator over
                                            the file: parse each line, write
                                            its result as a JSON line; lines/s
    python_step.py celery-worker PORT       Celery running parse per item
    python_step.py celery-produce PORT PATH N
                                            the first N lines as Celery tasks;
                                            tasks/s once all ran

The work, parse, is the same in all three: zflow runs it with
`python3 -m zflow coprocess python_step:parse` (protocol = batch).
"""
import asyncio
import json
import sys
import time

WORDS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta")


def parse(item):
    """A record's summary: the step every implementation runs per line."""
    words = item["text"].split()
    return {"n": item["n"], "user": item["user"], "words": len(words),
            "longest": max(words, key=len), "tags": sorted(item["tags"])}


def make(path, count):
    with open(path, "w", buffering=1 << 20) as out:
        for n in range(count):
            text = " ".join(WORDS[(n + i) % len(WORDS)] for i in range(150))[:900]
            out.write(json.dumps({"n": n, "user": "user%05d" % (n % 10000), "text": text,
                                  "tags": ["t%d" % (n % 7), "t%d" % (n % 3)]}) + "\n")


async def records(path):
    """The file's records, one at a time: the async generator."""
    with open(path, "rb") as f:
        for line in f:
            yield json.loads(line)


async def plain(path, out_path):
    count = 0
    start = time.perf_counter()
    with open(out_path, "w", buffering=1 << 20) as out:
        async for item in records(path):
            out.write(json.dumps(parse(item), separators=(",", ":")) + "\n")
            count += 1
    print("%.0f" % (count / (time.perf_counter() - start)))


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "make":
        make(sys.argv[2], int(sys.argv[3]))
    elif what == "plain":
        asyncio.run(plain(sys.argv[2], sys.argv[3]))
    else:
        import redis
        from celery import Celery
        port = int(sys.argv[2])
        app = Celery("bench", broker="redis://127.0.0.1:%d/0" % port)
        app.conf.update(task_acks_late=True, task_ignore_result=True,
                        worker_hijack_root_logger=False,
                        broker_connection_retry_on_startup=True, task_default_queue="parse")
        counter = redis.Redis(host="127.0.0.1", port=port, db=1)

        @app.task(name="parse")
        def parse_task(item):
            parse(item)
            counter.incr("done")

        if what == "celery-worker":
            app.worker_main(["worker", "--concurrency=2", "--pool=prefork", "-Q", "parse",
                             "--without-heartbeat", "--without-gossip", "--without-mingle",
                             "--loglevel=WARNING"])
        else:
            count = int(sys.argv[4])
            counter.set("done", 0)
            with open(sys.argv[3], "rb") as f:
                items = [json.loads(next(f)) for _ in range(count)]
            start = time.monotonic()
            for item in items:
                parse_task.delay(item)
            deadline = start + 600
            while int(counter.get("done") or 0) < count and time.monotonic() < deadline:
                time.sleep(0.02)
            print("%.0f" % (int(counter.get("done") or 0) / (time.monotonic() - start)))
