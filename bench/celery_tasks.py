#!/usr/bin/python3
"""Celery with Redis doing what bench_tasks does: a task that returns its
argument, its result kept in Redis and fetched by the caller (delay() then
.get()), acks late, two worker processes.

    celery_tasks.py worker PORT             run the worker (prefork, concurrency 2)
    celery_tasks.py latency PORT ROUNDS     ROUNDS round trips one after another:
                                            each one's ms, one a line
    celery_tasks.py throughput PORT N       N tasks sent at once, then each
                                            one's result got: tasks/s

The same output as bench_tasks's modes. A result that is not its task's
argument is counted, and makes the exit status 1.
"""
import sys
import time

from celery import Celery

PORT = int(sys.argv[2])
app = Celery("bench", broker="redis://127.0.0.1:%d/0" % PORT,
             backend="redis://127.0.0.1:%d/1" % PORT)
app.conf.update(task_acks_late=True, worker_hijack_root_logger=False,
                broker_connection_retry_on_startup=True, task_default_queue="tasks",
                result_expires=3600)


@app.task
def echo(n):
    return n


def latency(rounds):
    wrong = 0
    for i in range(10):  # connecting is not timed
        wrong += echo.delay(-1 - i).get(timeout=30) != -1 - i
    for i in range(rounds):
        start = time.perf_counter()
        answer = echo.delay(i).get(timeout=30)
        print("%.3f" % ((time.perf_counter() - start) * 1000))
        wrong += answer != i
    return wrong


def throughput(count):
    start = time.perf_counter()
    handles = [echo.delay(i) for i in range(count)]
    wrong = sum(handle.get(timeout=300) != i for i, handle in enumerate(handles))
    print("%.0f" % (count / (time.perf_counter() - start)))
    return wrong


def main():
    if sys.argv[1] == "worker":
        app.worker_main(["worker", "--concurrency=2", "--pool=prefork", "-Q", "tasks",
                         "--without-heartbeat", "--without-gossip", "--without-mingle",
                         "--loglevel=WARNING"])
        return 0
    wrong = {"latency": latency, "throughput": throughput}[sys.argv[1]](int(sys.argv[3]))
    if wrong:
        print("celery_tasks: %d tasks without their result" % wrong, file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
