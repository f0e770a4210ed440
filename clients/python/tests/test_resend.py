"""What a Python worker sent and the broker did not confirm is sent again
on the next session (schemas/zfp.md): a journaled broker (sync = always)
killed with SIGKILL and started again on its journal and port, while
backpressure holds outputs, loses nothing and duplicates nothing."""
import collections
import os
import signal

import zflow
from conftest import Broker, wait_for

HELD = """broker
    sync = always
queues
    numbers
        external = true
    copies
        max-depth = 4
actors
    copy
        kind = exec
        command = "python3 -m zflow worker workers:copy"
        input = numbers
        output = copies
    store
        kind = sink
        input = copies
        target = file:out.jsonl
        concurrency = 2
"""

def queues(client):
    """The broker's figures of each queue, by name (STATUS without an id)."""
    _, header, _ = client._request("STATUS", {}, (), lambda command, header, _:
                                   command == "REPORT" and "queues" in header, 10)
    return {q["name"]: q for q in header["queues"]}


def lines(directory, name="out.jsonl"):
    try:
        with open(os.path.join(directory, name)) as f:
            return [line for line in f.read().splitlines() if line]
    except FileNotFoundError:
        return []


def drained(client, *names):
    """True once the queues hold nothing, queued or in flight."""
    figures = queues(client)
    return all(figures[n]["depth"] == 0 and figures[n]["inflight"] == 0 for n in names)


def lost_and_duplicated(seen, expected):
    counts = collections.Counter(seen)
    return ([e for e in expected if counts[e] == 0],
            sorted(e for e, times in counts.items() if times > 1))


def test_a_worker_resends_outputs_held_by_backpressure_across_broker_kills(tmp_path,
                                                                             processes):
    directory = str(tmp_path)
    broker = Broker(directory, HELD, journal=True)
    client = None
    try:
        count = 50
        # Every item in the worker's hands at once, whatever credit the
        # broker gives back while outputs wait.
        worker = processes.worker(broker, "workers:copy", "--concurrency", "64")
        client = zflow.Client(broker.endpoint)
        client.put_many("numbers", range(count))
        # The sink is not running: copies fills to its max-depth and the
        # broker holds the rest of the worker's outputs, unconfirmed.
        wait_for(lambda: (lambda q: q["numbers"]["depth"] == 0 and
                          q["copies"]["depth"] == 4)(queues(client)),
                 what="copies full, every number taken")
        broker.stop(signal.SIGKILL)
        broker.start()
        processes.actor(broker, "store")
        wait_for(lambda: len(lines(directory)) >= 10, what="10 items at the sink")
        broker.stop(signal.SIGKILL)  # again, while items flow to the sink
        broker.start()
        wait_for(lambda: len(lines(directory)) >= count, timeout=60, what="every item")
        assert worker.poll() is None  # the same worker all along
        worker.terminate()  # it waits for its last CONFIRMs, then says BYE
        assert worker.wait(timeout=20) == 0
        wait_for(lambda: drained(client, "numbers", "copies"), what="empty queues")
        seen = [int(line) for line in lines(directory)]
        assert lost_and_duplicated(seen, range(count)) == ([], [])
    finally:
        if client:
            client.close()
        processes.stop_all()
        broker.stop()
