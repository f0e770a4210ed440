"""AsyncClient inside an aiohttp web app, against a real broker and a
Python worker: many requests at once on one session."""
import asyncio

import aiohttp
import pytest
from aiohttp import web

import zflow
from conftest import Broker, free_port
from test_client import TASKS


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
