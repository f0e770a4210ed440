"""AsyncClient inside an aiohttp web app, against a real broker and a
Python worker: many requests at once on one session; a client that
waits, idle, for results; and one whose peer sends what is not ZFP."""
import asyncio
import time

import aiohttp
import pytest
import zmq
import zmq.asyncio
from aiohttp import web

import zflow
from conftest import Broker, free_port
from test_client import TASKS
from zflow import _zfp


def test_an_aiohttp_app_puts_tasks_and_waits_for_results(tmp_path, processes):
    broker = Broker(str(tmp_path), TASKS)
    processes.worker(broker, "workers:slow_double", "--name", "double")

    async def scenario():
        client = await zflow.AsyncClient.connect(broker.endpoint)

        async def submit(request):
            task = await client.put("tasks", int(request.query["n"]))
            return web.json_response({"id": task.id})

        async def answer(request):
            result = await client.result(request.match_info["id"], timeout=20)
            return web.json_response({"state": result.state, "values": result.values,
                                      "error": result.error})

        app = web.Application()
        app.router.add_post("/tasks", submit)
        app.router.add_get("/tasks/{id}", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        base = "http://127.0.0.1:%d" % port
        try:
            async with aiohttp.ClientSession() as http:
                async def one(n):
                    async with http.post(base + "/tasks", params={"n": str(n)}) as r:
                        assert r.status == 200
                        id = (await r.json())["id"]
                    async with http.get(base + "/tasks/" + id) as r:
                        return await r.json()
                answers = await asyncio.gather(*(one(n) for n in range(200)))
            assert [a["state"] for a in answers] == ["done"] * 200
            assert [a["values"] for a in answers] == [[2 * n] for n in range(200)]
            with pytest.raises(zflow.Refused):
                await client.put("nosuch", 1)
            later = await client.put("tasks", 1, delay=3600)
            assert await later.status() == "delayed"
            assert await later.cancel("not now") == "cancelled"
            assert (await later.result()).error == "not now"
            assert await later.cancel() == "cancelled"          # over already
            assert await client.cancel("cd" * 16) == "unknown"
            assert await (await client.group("tasks", [])).get() == []
            with pytest.raises(ValueError):
                await client.put("tasks", 1, delay="a while")
            assert await (await client.put("tasks", 4)).get(timeout=20) == 8
        finally:
            await runner.cleanup()
            await client.close()

    try:
        asyncio.run(scenario())
    finally:
        processes.stop_all()
        broker.stop()


@pytest.mark.serial
def test_an_idle_client_waiting_for_results_burns_no_cpu(tmp_path, processes):
    """Coroutines waiting for results that take seconds, two of them for
    one id: the client sleeps until the broker answers (its process uses
    under 5% of a CPU meanwhile), and every one of them is answered; then,
    with a worker, results arrive, to two waiters of each id too."""
    broker = Broker(str(tmp_path), TASKS)

    async def scenario():
        client = await zflow.AsyncClient.connect(broker.endpoint)
        try:
            later = await client.put("tasks", 1, delay=3600)
            other = await client.put("tasks", 2, delay=3600)
            cpu, wall = time.process_time(), time.monotonic()
            # The broker holds each answer for its timeout: the two
            # questions about `later` are asked one after the other.
            waited = await asyncio.gather(client.result(later.id, timeout=1.5),
                                          client.result(later.id, timeout=1.5),
                                          client.result(other.id, timeout=2))
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
            assert [(r.id, r.state) for r in waited] == \
                [(later.id, "delayed"), (later.id, "delayed"), (other.id, "delayed")]
            assert cpu < 0.05 * wall, "%.3f s of CPU in %.1f s of waiting" % (cpu, wall)

            processes.worker(broker, "workers:slow_double", "--name", "double")
            tasks = [await client.put("tasks", n) for n in range(20)]
            values = await asyncio.gather(*(task.get(timeout=20) for task in tasks
                                            for _ in range(2)))
            assert values == [2 * n for n in range(20) for _ in range(2)]
        finally:
            await client.close()

    try:
        asyncio.run(scenario())
    finally:
        processes.stop_all()
        broker.stop()


def test_a_message_that_is_not_zfp_does_not_stop_the_client():
    """A peer on the broker's port that sends, before its WELCOME and
    before each REPORT, a header Python cannot read (a map keyed by an
    array): the client drops those, is welcomed, and is answered."""
    unreadable = b"\x81\x91\x01\x02"

    async def scenario():
        router = zmq.asyncio.Context.instance().socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        port = router.bind_to_random_port("tcp://127.0.0.1")

        async def serve():
            while True:
                peer, command, header = (await router.recv_multipart())[:3]
                if command == b"HELLO":
                    await router.send_multipart([peer, b"PING", unreadable])
                    await router.send_multipart([peer] + _zfp.encode(
                        "WELCOME", {"version": 1, "heartbeat": 1000, "liveness": 3}))
                elif command == b"STATUS":
                    await router.send_multipart([peer, b"REPORT", unreadable])
                    await router.send_multipart([peer] + _zfp.encode(
                        "REPORT", {"id": _zfp.unpack(header)["id"], "state": "queued"}))

        server = asyncio.ensure_future(serve())
        client = None
        try:
            client = await zflow.AsyncClient.connect("tcp://127.0.0.1:%d" % port, timeout=5)
            assert await client.status("ab" * 16) == "queued"
            assert await client.status("cd" * 16) == "queued"
        finally:
            if client is not None:
                await client.close()
            server.cancel()
            router.close()

    asyncio.run(scenario())
