"""zflow for Python: a client for the broker (put tasks, get their results,
cancel them, tap events) and workers written as plain or async functions.

    import zflow

    client = zflow.Client("tcp://127.0.0.1:5670")
    task = client.put("tasks", {"n": 7})
    print(task.get(timeout=30))

    @zflow.actor(input="tasks", output="answers", concurrency=8)
    async def work(item):
        return {"n": item["n"] * 2}

docs/python.md has the whole of it. Needs python3-zmq and python3-msgpack.
"""
from ._session import BrokerError, WrongBroker
from .aio import AsyncClient, AsyncHandle
from .client import Client, Handle, Refused, Result, TaskFailed
from .worker import Context, Retry, TimeLimit, Worker, actor, current, on_start, on_stop

__all__ = ["AsyncClient", "AsyncHandle", "BrokerError", "Client", "Context", "Handle", "Refused",
           "Result", "Retry", "TaskFailed", "TimeLimit", "Worker", "WrongBroker", "actor",
           "current", "on_start", "on_stop"]
__version__ = "0.2.0"
