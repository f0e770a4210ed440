#!/usr/bin/python3
"""Celery with Redis doing what bench/stream's second pipeline does: for
each of N items, a no-op processing task whose result goes on to a sink
task that writes it to a file (a chain of two tasks), acks late, two
prefork worker processes.

    celery_chain.py worker PORT OUT      run the worker; the sink appends to OUT
    celery_chain.py produce PORT N       send N chains, print items/s when all sank

Completion is counted with one Redis INCR in the sink task.
"""
import sys
import time

import redis
from celery import Celery, chain

PORT = int(sys.argv[2])
app = Celery("bench", broker="redis://127.0.0.1:%d/0" % PORT)
app.conf.update(task_acks_late=True, task_ignore_result=True, worker_hijack_root_logger=False,
                broker_connection_retry_on_startup=True, task_default_queue="bench")
counter = redis.Redis(host="127.0.0.1", port=PORT, db=1)
OUT = sys.argv[3] if sys.argv[1] == "worker" else None


@app.task
def identity(item):
    return item


@app.task
def sink(item):
    with open(OUT, "a") as out:
        out.write("%s\n" % item)
    counter.incr("done")


if __name__ == "__main__":
    if sys.argv[1] == "worker":
        app.worker_main(["worker", "--concurrency=2", "--pool=prefork", "-Q", "bench",
                         "--without-heartbeat", "--without-gossip", "--without-mingle",
                         "--loglevel=WARNING"])
    else:
        n = int(sys.argv[3])
        counter.set("done", 0)
        start = time.monotonic()
        for i in range(n):
            chain(identity.s(i), sink.s()).delay()
        deadline = start + 600
        while int(counter.get("done") or 0) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        done = int(counter.get("done") or 0)
        elapsed = time.monotonic() - start
        print("%.0f" % (done / elapsed))
