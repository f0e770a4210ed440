"""A worker whose on_start fails, as one does when its settings are wrong
(a module of its own: hooks are the process's)."""
import os

import zflow


@zflow.on_start
def open_database():
    int(os.environ.get("DB_POOL_SIZE", "ten"))   # ValueError


@zflow.actor(input="sends", output="done")
def work(item):
    return item
