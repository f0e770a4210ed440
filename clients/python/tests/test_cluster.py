"""The Python clients against a replicated broker: three `zflow broker
--cluster` processes on 127.0.0.1. Given the group's endpoints, a client
goes to the leader, and when the leader is killed (-9) it goes to the next
one at once; what the first leader confirmed is there."""
import asyncio
import json
import os
import signal
import subprocess
import time

import pytest

import zflow
from conftest import ZFLOW, free_port, wait_for
from test_client import TASKS
from test_resend import HELD, drained, lines, lost_and_duplicated, queues

# Elections and rates are timed here: alone, not beside other tests.
pytestmark = pytest.mark.serial

GROUP = TASKS + """cluster
    election-timeout = 300ms
"""


class Group:
    """Three brokers of a Raft group, each with its folder and its ports."""

    def __init__(self, directory, config):
        self.directory = directory
        self.path = os.path.join(directory, "p.zpl")
        with open(self.path, "w") as f:
            f.write(config)
        self.nodes = ",".join("127.0.0.1:%d" % free_port() for _ in range(3))
        self.endpoints = ["tcp://127.0.0.1:%d" % free_port() for _ in range(3)]
        self.endpoint = ",".join(self.endpoints)  # what clients and workers are given
        self.processes = [None] * 3
        for i in range(3):
            self.start(i)

    def start(self, i):
        argv = [ZFLOW, "broker", self.path, "--cluster", self.nodes, "--node", str(i + 1),
                "--endpoint", self.endpoints[i], "--events", "tcp://127.0.0.1:%d" % free_port(),
                "--journal", os.path.join(self.directory, "node%d" % (i + 1))]
        log = open(os.path.join(self.directory, "node%d.log" % (i + 1)), "a")
        self.processes[i] = subprocess.Popen(argv, stdout=log, stderr=log)

    def kill(self, i):
        self.processes[i].send_signal(signal.SIGKILL)
        self.processes[i].wait(timeout=10)

    def stop(self):
        for p in self.processes:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=10)


def test_a_client_follows_the_leader(tmp_path, processes):
    group = Group(str(tmp_path), GROUP)
    try:
        processes.worker(group, "workers:double")
        with zflow.Client(group.endpoint) as client:
            first = client.put_many("tasks", range(20))
            leader = group.endpoints.index(client.session.endpoint)
            assert [t.get(timeout=20) for t in first] == [2 * n for n in range(20)]
            group.kill(leader)
            second = client.put_many("tasks", range(20, 40))  # confirmed by the next leader
            assert client.session.endpoint != group.endpoints[leader]
            assert [t.get(timeout=20) for t in second] == [2 * n for n in range(20, 40)]
            # The results of the first leader's time are the group's.
            assert client.result(first[0].id, timeout=20).values == [0]
    finally:
        group.stop()


def test_a_client_given_a_follower_goes_to_the_leader(tmp_path, processes):
    group = Group(str(tmp_path), GROUP)
    try:
        with zflow.Client(group.endpoint) as probe:
            probe.put("tasks", 1)
            leader = group.endpoints.index(probe.session.endpoint)
        follower = group.endpoints[(leader + 1) % 3]
        with zflow.Client(follower) as client:
            client.put("tasks", 2)
            assert client.session.endpoint == group.endpoints[leader]
    finally:
        group.stop()


def test_the_async_client_follows_the_leader(tmp_path, processes):
    group = Group(str(tmp_path), GROUP)
    try:
        processes.worker(group, "workers:double")

        async def scenario():
            async with await zflow.AsyncClient.connect(group.endpoint) as client:
                first = await client.put_many("tasks", range(10))
                leader = group.endpoints.index(client.endpoint)
                group.kill(leader)
                second = await client.put_many("tasks", range(10, 20), timeout=20)
                assert client.endpoint != group.endpoints[leader]
                results = [await client.result(t.id, timeout=20) for t in first + second]
                return [r.values for r in results]

        assert asyncio.run(scenario()) == [[2 * n] for n in range(20)]
    finally:
        group.stop()


def test_a_worker_resends_held_outputs_to_the_next_leader(tmp_path, processes):
    directory = str(tmp_path)
    group = Group(directory, HELD.replace("    sync = always\n", "    sync = batch\n") +
                  "cluster\n    election-timeout = 300ms\n")
    try:
        count = 50
        worker = processes.worker(group, "workers:copy", "--concurrency", "64")
        with zflow.Client(group.endpoint) as client:
            client.put_many("numbers", range(count))
            # No sink yet: the leader holds the outputs past copies' max-depth.
            wait_for(lambda: (lambda q: q["numbers"]["depth"] == q["numbers"]["inflight"] and
                              q["copies"]["depth"] == 4)(queues(client)),
                     what="copies full, every number taken")
            leader = group.endpoints.index(client.session.endpoint)
            group.kill(leader)
            processes.actor(group, "store")
            wait_for(lambda: len(lines(directory)) >= count, timeout=60, what="every item")
            assert worker.poll() is None
            worker.terminate()
            assert worker.wait(timeout=20) == 0
            wait_for(lambda: drained(client, "numbers", "copies"), what="empty queues")
        seen = [int(line) for line in lines(directory)]
        assert lost_and_duplicated(seen, range(count)) == ([], [])
    finally:
        group.stop()


def test_steering_is_replicated(tmp_path, processes):
    group = Group(str(tmp_path), GROUP)

    def zflow_cli(*args):
        done = subprocess.run([ZFLOW] + list(args), capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
        return done.returncode, done.stdout, done.stderr

    def dead():
        status, out, err = zflow_cli("dead", group.endpoint, "tasks", "--json")
        assert status == 0, err
        return json.loads(out)["letters"]
    try:
        processes.worker(group, "workers:double")
        with zflow.Client(group.endpoint) as client:
            tasks = [client.put("tasks", "fail").id for _ in range(2)]
            wait_for(lambda: [client.status(t) for t in tasks] == ["dead"] * 2)
            leader = group.endpoints.index(client.session.endpoint)
            assert zflow_cli("pause", group.endpoint, "tasks")[0] == 0
            group.kill(leader)
            # The next leader has the letters and the pause.
            assert sorted(letter["id"] for letter in dead()) == sorted(tasks)
            status, out, _ = zflow_cli("status", group.endpoint)
            assert [line.split()[-1] for line in out.splitlines()
                    if line.startswith("tasks ")][0] == "paused"  # the queues' table
            assert zflow_cli("requeue", group.endpoint, "tasks", "--all")[1] == \
                "requeued 2 from tasks.dead\n"
            assert [client.status(t) for t in tasks] == ["queued"] * 2
            assert zflow_cli("resume", group.endpoint, "tasks")[0] == 0
            wait_for(lambda: len(dead()) == 2, what="the requeued dead again")
            assert [letter["headers"]["zflow-requeued"] for letter in dead()] == ["1", "1"]
    finally:
        group.stop()


def test_a_schedule_outlives_its_leader_and_fires_each_time_once(tmp_path, processes,
                                                                 monkeypatch):
    group = Group(str(tmp_path), GROUP)
    log = os.path.join(str(tmp_path), "ticks")
    monkeypatch.setenv("ZFLOW_TEST_TICKS", log)

    def fired():
        try:
            with open(log) as f:
                return f.read().split()
        except FileNotFoundError:
            return []
    try:
        processes.worker(group, "workers:tick")
        done = subprocess.run([ZFLOW, "schedule", group.endpoint, "add", "beat", "--cron",
                               "* * * * * *", "--queue", "tasks"], capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr
        wait_for(lambda: len(fired()) >= 3, what="three firings")
        with zflow.Client(group.endpoint) as client:
            client.put("tasks", {"scheduled": "a put, to find the leader"})
            leader = group.endpoints.index(client.session.endpoint)
        group.kill(leader)
        before = len(fired())
        wait_for(lambda: len(fired()) >= before + 3, timeout=30, what="firings after failover")
        times = [t for t in fired() if t.startswith("20")]
        assert len(set(times)) == len(times), times  # no time fired twice
        listed = subprocess.run([ZFLOW, "schedule", group.endpoint, "list"], capture_output=True,
                                text=True, timeout=60, stdin=subprocess.DEVNULL).stdout
        assert "beat" in listed and "active" in listed
    finally:
        group.stop()


def test_a_rate_outlives_its_leader_without_a_burst(tmp_path, processes):
    """rate = 20/s with a burst of 40 on a replicated broker: the first
    leader may hand out its burst; when it is killed, the next one takes
    every bucket as emptied when it began to lead, so from the kill on no
    more items start than the rate allows (a bucket reset to full would
    start 40 at once). Read from the workers' own records."""
    from test_flow import pipeline, start_workers, starts
    group = Group(str(tmp_path), pipeline(["rate = 20/s", "burst = 40"]) +
                  "cluster\n    election-timeout = 300ms\n")
    try:
        start_workers(processes, tmp_path, group.endpoint, 2)
        with zflow.Client(group.endpoint) as client:
            client.put_many("jobs", [{"key": "k", "n": n} for n in range(160)])
            leader = group.endpoints.index(client.session.endpoint)
        wait_for(lambda: len(starts(tmp_path)) >= 60, timeout=30, what="60 started")
        killed = time.time()
        group.kill(leader)
        wait_for(lambda: len({r[3] for r in starts(tmp_path)}) >= 160, timeout=60,
                 what="every item started")
        after = [r[1] for r in starts(tmp_path) if r[1] > killed]
        assert len(after) >= 60, len(after)  # the rest, and what the kill took back
        # By any moment, no more started since the first start after the
        # kill than 20/s allows, the bucket's one token and 3 items of slack
        # for how late a worker recorded its start.
        for count, t in enumerate(after, 1):
            assert count <= 20 * (t - after[0]) + 1 + 3, (count, t - after[0])
    finally:
        group.stop()
