"""What a Python client or worker sent and the broker did not confirm is
sent again on the next session (schemas/zfp.md): a journaled broker
(sync = always) killed with SIGKILL and started again on its journal and
port, while backpressure holds outputs, loses nothing and duplicates
nothing; a client's put in flight is confirmed once the broker is back,
and one the broker never confirms raises."""
import asyncio
import collections
import os
import signal
import subprocess
import threading
import time

import pytest
import zmq

import zflow
from conftest import ZFLOW, Broker, wait_for
from zflow import _zfp
from zflow._session import Session

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

TIGHT = """broker
    sync = always
queues
    tasks
        external = true
    held
        external = true
        max-depth = 2
actors
    keep
        kind = sink
        input = tasks
        target = file:tasks.jsonl
    store
        kind = sink
        input = held
        target = file:out.jsonl
        concurrency = 1
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
        # broker holds the rest of the worker's outputs, unconfirmed, and
        # the ACKs behind them: every number is in the worker's hands.
        wait_for(lambda: (lambda q: q["numbers"]["depth"] == q["numbers"]["inflight"] and
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


class Outcome:
    """The return value or exception of a call run on a thread of its own."""

    def __init__(self, call):
        self.value = self.error = None
        self.thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self.thread.start()

    def _run(self, call):
        try:
            self.value = call()
        except Exception as e:  # raised again by wait
            self.error = e

    def wait(self, timeout):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the call did not end within %s s" % timeout
        if self.error:
            raise self.error
        return self.value


def test_client_puts_survive_a_broker_kill(tmp_path, processes):
    directory = str(tmp_path)
    broker = Broker(directory, TIGHT, journal=True)
    client = zflow.Client(broker.endpoint, timeout=30)
    probe = zflow.Client(broker.endpoint)
    try:
        before = client.put_many("tasks", range(20))
        probe.put("held", "first")
        # a is taken, b waits for room: the PUT is in flight, unconfirmed.
        put = Outcome(lambda: client.put_many("held", ["a", "b"]))
        wait_for(lambda: queues(probe)["held"]["depth"] == 2, what="a taken, b held")
        assert put.thread.is_alive()
        broker.stop(signal.SIGKILL)
        broker.start()
        processes.actor(broker, "store")  # room for b
        assert len(put.wait(30)) == 2
        wait_for(lambda: drained(probe, "held"), what="held drained")
        # Every put that returned is stored; the one in flight too, once.
        assert [client.status(h.id) for h in before] == ["queued"] * 20
        assert lost_and_duplicated([s.strip('"') for s in lines(directory)],
                                   ["first", "a", "b"]) == ([], [])
    finally:
        client.close()
        probe.close()
        processes.stop_all()
        broker.stop()


async def until(predicate, what, timeout=20):
    """As wait_for, letting the loop run meanwhile."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "%s did not come within %s s" % (what, timeout)
        await asyncio.sleep(0.05)


def test_async_client_puts_survive_a_broker_kill(tmp_path, processes):
    directory = str(tmp_path)
    broker = Broker(directory, TIGHT, journal=True)
    probe = zflow.Client(broker.endpoint)

    async def scenario():
        client = await zflow.AsyncClient.connect(broker.endpoint, timeout=30)
        try:
            before = await client.put_many("tasks", range(20))
            probe.put("held", "first")
            put = asyncio.ensure_future(client.put_many("held", ["a", "b"]))
            await until(lambda: queues(probe)["held"]["depth"] == 2, "a taken, b held")
            assert not put.done()
            broker.stop(signal.SIGKILL)
            broker.start()
            processes.actor(broker, "store")  # room for b
            assert len(await asyncio.wait_for(put, 30)) == 2
            await until(lambda: drained(probe, "held"), "held drained")
            return [await client.status(h.id) for h in before]
        finally:
            await client.close()

    try:
        assert asyncio.run(scenario()) == ["queued"] * 20
        assert lost_and_duplicated([s.strip('"') for s in lines(directory)],
                                   ["first", "a", "b"]) == ([], [])
    finally:
        probe.close()
        processes.stop_all()
        broker.stop()


def test_a_put_the_broker_never_confirms_raises(tmp_path, processes):
    broker = Broker(str(tmp_path), TIGHT, journal=True)
    client = zflow.Client(broker.endpoint)
    try:
        client.put("tasks", 1)
        broker.stop(signal.SIGKILL)
        # Sent on the session the broker had, then on a new one it never welcomes.
        for body in (2, 3):
            with pytest.raises(zflow.BrokerError):
                client.put("tasks", body, timeout=2)

        async def scenario():
            aclient = await zflow.AsyncClient.connect(broker.endpoint, timeout=30)
            try:
                await aclient.put("tasks", 4)
                broker.stop(signal.SIGKILL)
                with pytest.raises(zflow.BrokerError):
                    await aclient.put("tasks", 5, timeout=2)
                await until(lambda: not aclient.welcomed.is_set(), "a new session")
                with pytest.raises(zflow.BrokerError):
                    await aclient.put("tasks", 6, timeout=2)
            finally:
                await aclient.close()

        broker.start()
        asyncio.run(scenario())
    finally:
        client.close()
        processes.stop_all()
        broker.stop()


def test_a_refused_hello_ends_the_session_for_good():
    """A broker that refuses the HELLO of a session holding unconfirmed
    PUTs (another pipeline now on the port) answers each resent PUT with
    "PUT before HELLO": the refusal raises WrongBroker, and no new session
    follows, HELLO and PUTs again as fast as the broker answers."""
    router = zmq.Context.instance().socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    session = Session("tcp://127.0.0.1:%d" % port, "copy")

    def take(command):
        """The routing id of the session's next message but PING, command."""
        while True:
            assert router.poll(5000), "no %s within 5 s" % command
            frames = router.recv_multipart()
            if frames[1] != b"PING":
                assert frames[1] == command.encode()
                return frames[0]

    def answer(peer, command, header):
        router.send_multipart([peer] + _zfp.encode(command, header))

    try:
        peer = take("HELLO")
        answer(peer, "WELCOME", {"version": 1, "heartbeat": 200, "liveness": 3, "window": 10})
        assert session.receive(5)[0] == "WELCOME"
        session.put(1, {"seq": 1, "items": [{"id": bytes(16), "queue": "copies", "ts": 0}]},
                    [_zfp.pack(1)])
        take("PUT")
        # The broker restarted: a new session, the PUT sent again after HELLO.
        answer(peer, "ERROR", {"code": "state", "reason": "PING before HELLO"})
        deadline = time.monotonic() + 5
        while session.sessions == 1:
            assert time.monotonic() < deadline, "no new session within 5 s"
            session.receive(0.05)
        peer = take("HELLO")
        assert take("PUT") == peer
        # Now refused: the HELLO, then the PUT.
        answer(peer, "ERROR", {"code": "value", "reason": "this broker runs pipeline 'b'"})
        answer(peer, "ERROR", {"code": "state", "reason": "PUT before HELLO"})
        with pytest.raises(zflow.WrongBroker, match="runs pipeline 'b'"):
            session.receive(5)
        with pytest.raises(zflow.WrongBroker):  # for good
            session.receive(0.05)
        with pytest.raises(zflow.WrongBroker):
            session.open()
        assert session.sessions == 2 and session.unconfirmed_items == 1
    finally:
        session.close()
        router.close()


COUNTED = """pipeline
    results = copies
queues
    numbers
        external = true
actors
    copy
        kind = exec
        command = "python3 -m zflow worker workers:copy"
        input = numbers
        output = copies
"""


def done_of(broker, actor):
    """The actor's done figure as zflow top shows it (its workers' sum),
    or None before the broker's stats name it."""
    top = subprocess.run([ZFLOW, "top", broker.events, "--once"], capture_output=True,
                         text=True, timeout=30)
    for line in top.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[0] == actor and fields[1].isdigit():
            return int(fields[4])  # ACTOR WORKERS HOSTS IN-FLIGHT DONE
    return None


def test_a_python_workers_done_outlives_a_broker_kill(tmp_path, processes):
    """A new session (the broker killed and started again) carries the
    worker's count on: top shows every item it did, not those since."""
    broker = Broker(str(tmp_path), COUNTED, journal=True)
    try:
        processes.worker(broker, "workers:copy", "--name", "copy")
        with zflow.Client(broker.endpoint) as client:
            client.put_many("numbers", range(10))
        wait_for(lambda: done_of(broker, "copy") == 10, what="10 done before the kill")
        broker.stop(signal.SIGKILL)
        broker.start()
        with zflow.Client(broker.endpoint) as client:
            client.put_many("numbers", range(10, 15))
        wait_for(lambda: done_of(broker, "copy") == 15, timeout=30,
                 what="15 done after it (%s)" % done_of(broker, "copy"))
    finally:
        broker.stop()
