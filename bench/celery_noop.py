#!/usr/bin/python3
"""Celery with Redis doing the same job as bench_broker: no-op tasks, acks
late (a task is acked after it ran, like a zflow ACK), two worker
processes.

    celery_noop.py worker PORT        run the worker (prefork, concurrency 2)
    celery_noop.py produce PORT N     send N tasks, print tasks/s when all ran

Completion is counted with one Redis INCR per task, the least a no-op task
can do to be counted.
"""
import sys
import time

import redis
from celery import Celery

PORT = int(sys.argv[2])
app = Celery("bench", broker="redis://127.0.0.1:%d/0" % PORT)
app.conf.update(task_acks_late=True, task_ignore_result=True, worker_hijack_root_logger=False,
                broker_connection_retry_on_startup=True, task_default_queue="bench")
counter = redis.Redis(host="127.0.0.1", port=PORT, db=1)


@app.task
def noop():
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
        for _ in range(n):
            noop.delay()
        deadline = start + 600
        while int(counter.get("done") or 0) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        done = int(counter.get("done") or 0)
        elapsed = time.monotonic() - start
        print("%.0f" % (done / elapsed))
