"""bench/http's peer: a FastAPI app under uvicorn whose POST /tasks hands
its JSON body to Celery (`delay()`) on Redis and answers with the task's
id, the way a Python web app gives work to a task queue.

    REDIS_PORT=P uvicorn fastapi_celery:app --port Q --workers 2
"""
import os

from celery import Celery
from fastapi import Body, FastAPI

celery = Celery("bench", broker="redis://127.0.0.1:%s/0" % os.environ["REDIS_PORT"])


@celery.task(name="bench.resize")
def resize(item):
    return item


app = FastAPI()


@app.post("/tasks")
def put(item: dict = Body(...)):
    # A plain def: FastAPI runs it on its thread pool, as delay() blocks.
    return {"id": resize.delay(item).id}


@app.get("/health")
def health():
    return "ok"
