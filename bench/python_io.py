#!/usr/bin/python3
"""The I/O-bound case of bench/python: tasks that each wait for an HTTP
answer that takes 50 ms, as a web app's background jobs do (a call to a
payment API, a webhook, a fetch).

    python_io.py server PORT                 the slow service: GET /wait
                                             answers "ok" after 50 ms
    python_io.py zflow ENDPOINT URL N        N tasks to zflow's queue
                                             `calls`; tasks/s once all are done
    python_io.py celery-worker PORT          Celery (Redis on PORT), prefork, 2
    python_io.py celery PORT URL N           N tasks to it; tasks/s
    python_io.py rq PORT URL N               N jobs to RQ (its workers are
                                             `rq worker`, started by bench/python);
                                             jobs/s

Each task is what its users write for that tool: zflow's an async
function on an aiohttp ClientSession opened once per worker (@on_start);
Celery's and RQ's a plain function with urllib (their workers run one
task at a time each).
"""
import asyncio
import sys
import time
import urllib.request

import zflow

DELAY = 0.05
http = None


@zflow.on_start
async def open_session():
    global http
    import aiohttp
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


@zflow.on_stop
async def close_session():
    await http.close()


@zflow.actor(input="calls", output="answers", concurrency=500)
async def call(url):
    async with http.get(url) as answer:
        return {"status": answer.status, "body": await answer.text()}


def call_blocking(url):
    with urllib.request.urlopen(url, timeout=30) as answer:
        return {"status": answer.status, "body": answer.read().decode()}


def serve(port):
    from aiohttp import web

    async def wait(_):
        await asyncio.sleep(DELAY)
        return web.Response(text="ok")
    app = web.Application()
    app.router.add_get("/wait", wait)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None,
                backlog=4096)


def zflow_rate(endpoint, url, count):
    with zflow.Client(endpoint, timeout=120) as client:
        start = time.monotonic()
        handles = client.put_many("calls", [url] * count)
        for handle in handles:
            value = handle.get(timeout=300)
            if value != {"status": 200, "body": "ok"}:
                raise SystemExit("a task answered %r" % (value,))
        return count / (time.monotonic() - start)


def celery_app(port):
    from celery import Celery
    app = Celery("bench_io", broker="redis://127.0.0.1:%d/0" % port,
                 backend="redis://127.0.0.1:%d/1" % port)
    app.conf.update(task_acks_late=True, worker_hijack_root_logger=False,
                    broker_connection_retry_on_startup=True, task_default_queue="calls")
    return app, app.task(name="call")(call_blocking)


def celery_rate(port, url, count):
    _, task = celery_app(port)
    start = time.monotonic()
    results = [task.delay(url) for _ in range(count)]
    for result in results:
        if result.get(timeout=600)["status"] != 200:
            raise SystemExit("a Celery task failed")
    return count / (time.monotonic() - start)


def rq_rate(port, url, count):
    import redis
    import rq
    queue = rq.Queue("calls", connection=redis.Redis(host="127.0.0.1", port=port))
    start = time.monotonic()
    jobs = [queue.enqueue("python_io.call_blocking", url) for _ in range(count)]
    deadline = start + 600
    while time.monotonic() < deadline:
        states = [job.get_status(refresh=True) for job in jobs]
        if "failed" in states:
            raise SystemExit("an RQ job failed")
        if all(state == "finished" for state in states):
            return count / (time.monotonic() - start)
        time.sleep(0.05)
    raise SystemExit("RQ did not finish in 600 s")


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "server":
        serve(int(sys.argv[2]))
    elif what == "celery-worker":
        app, _ = celery_app(int(sys.argv[2]))
        app.worker_main(["worker", "--concurrency=2", "--pool=prefork", "-Q", "calls",
                         "--without-heartbeat", "--without-gossip", "--without-mingle",
                         "--loglevel=WARNING"])
    else:
        rate = {"zflow": zflow_rate, "celery": celery_rate, "rq": rq_rate}[what]
        print("%.0f" % rate(sys.argv[2] if what == "zflow" else int(sys.argv[2]), sys.argv[3],
                            int(sys.argv[4])))
