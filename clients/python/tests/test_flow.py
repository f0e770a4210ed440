"""Flow control with real processes: a queue's rate held across workers on
two hosts (network namespaces of the test's own), a cap on each key's
items in flight never exceeded, and a per-key rate with a thousand keys.
Each is read from the workers' own records of when they started and
ended each item (flowjobs.py), not from the broker's figures."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

import zflow
from conftest import PYTHONPATH, ZFLOW, Broker, free_port, wait_for

# Rates and times are measured here: alone, not beside other tests.
pytestmark = pytest.mark.serial

PY = "/usr/bin/python3"
WORKER = [PY, "-m", "zflow", "worker", "flowjobs:paced"]


def pipeline(keys):
    """The queue jobs with keys, read by the Python workers of paced."""
    return ("queues\n    jobs\n        external = true\n        max-depth = 100000\n%s"
            "actors\n    paced\n        kind = exec\n"
            "        command = \"%s -m zflow worker flowjobs:paced\"\n        input = jobs\n"
            % ("".join("        %s\n" % k for k in keys), PY))


def records(directory):
    """(what, time, key, n) of every worker's records, by time."""
    rows = []
    for name in os.listdir(str(directory)):
        if name.startswith("flow-"):
            with open(os.path.join(str(directory), name)) as f:
                for line in f:
                    if not line.endswith("\n"):
                        break  # a record its worker is writing now
                    what, when, key, n = line.split()
                    rows.append((what, float(when), key, int(n), name))
    return sorted(rows, key=lambda r: (r[1], r[0] == "start"))


def starts(directory):
    return [r for r in records(directory) if r[0] == "start"]


def worker_env(directory, host):
    return dict(os.environ, PYTHONPATH=PYTHONPATH, JOBS_DIR=str(directory),
                ZFLOW_TEST_HOST=host, PATH="/usr/bin:" + os.environ.get("PATH", ""))


def start_workers(processes, directory, endpoint, count, argv=WORKER):
    """count worker processes of argv on the broker at endpoint, stopped
    after the test; their stderr in directory's worker.log."""
    for _ in range(count):
        processes.started.append(subprocess.Popen(
            argv + ["--broker", endpoint], env=worker_env(directory, "w"),
            stderr=open(str(directory / "worker.log"), "a")))


class Hosts:
    """Two hosts: network namespaces joined by a veth pair, 192.0.2.1 and
    192.0.2.2 (a documentation range, with no route out), made for this
    test and removed after it with all it ran."""

    def __init__(self):
        tag = "%d" % (os.getpid() % 100000)
        self.names = ["zfa%s" % tag, "zfb%s" % tag]
        self.addresses = ["192.0.2.1", "192.0.2.2"]
        self.processes = []
        self._ip("netns", "add", self.names[0])
        self._ip("netns", "add", self.names[1])
        self._ip("link", "add", "va" + tag, "netns", self.names[0], "type", "veth", "peer",
                 "name", "vb" + tag, "netns", self.names[1])
        for ns, link, address in zip(self.names, ["va" + tag, "vb" + tag], self.addresses):
            self._ip("-n", ns, "addr", "add", address + "/24", "dev", link)
            self._ip("-n", ns, "link", "set", link, "up")
            self._ip("-n", ns, "link", "set", "lo", "up")

    @staticmethod
    def _ip(*args):
        subprocess.run(["ip"] + list(args), check=True, capture_output=True, timeout=20)

    def run(self, host, argv, env=None, **kwargs):
        process = subprocess.Popen(["ip", "netns", "exec", self.names[host]] + argv, env=env,
                                   **kwargs)
        self.processes.append(process)
        return process

    def close(self):
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for name in self.names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)


@pytest.fixture
def hosts():
    if os.geteuid() != 0 or subprocess.run(["ip", "netns", "list"],
                                           capture_output=True).returncode != 0:
        pytest.skip("network namespaces need root and iproute2")
    made = Hosts()
    yield made
    made.close()


PUTTER = """
import sys, zflow
endpoint, count = sys.argv[1], int(sys.argv[2])
with zflow.Client(endpoint) as client:
    for first in range(0, count, 500):
        client.put_many("jobs", [{"key": "k", "n": n} for n in range(first, min(count, first + 500))])
"""


def test_a_rate_holds_across_workers_on_two_hosts(tmp_path, hosts):
    with open(str(tmp_path / "p.zpl"), "w") as f:
        f.write(pipeline(["rate = 200/s"]))
    endpoint = "tcp://%s:5670" % hosts.addresses[0]
    log = open(str(tmp_path / "broker.log"), "w")
    broker = hosts.run(0, [ZFLOW, "broker", str(tmp_path / "p.zpl"), "--endpoint", endpoint,
                           "--events", "tcp://%s:5671" % hosts.addresses[0], "--insecure"],
                       stdout=subprocess.PIPE, stderr=log, text=True)
    assert "connect to" in broker.stdout.readline()
    for host in (0, 0, 1, 1):
        hosts.run(host, WORKER + ["--broker", endpoint], env=worker_env(tmp_path, "h%d" % host),
                  stderr=log)
    total = 4400  # 22 s at 200/s
    put = hosts.run(0, [PY, "-c", PUTTER, endpoint, str(total)],
                    env=worker_env(tmp_path, "putter"))
    assert put.wait(timeout=60) == 0
    wait_for(lambda: len(starts(tmp_path)) >= total, timeout=90, what="every item started")
    times = [r[1] for r in starts(tmp_path)]
    assert len(times) == total  # each once
    # Over 20 s from the first second on: 200 ± 4 a second.
    t0 = times[0] + 1
    within = [t for t in times if t0 <= t < t0 + 20]
    assert 3920 <= len(within) <= 4080, len(within)
    # Never over the rate: by any moment, no more started than 200/s allows
    # since the first start. A worker that reads late only makes it fewer
    # (so a second's count alone says little under load); 10 items of
    # slack for how late the first start was recorded after its delivery.
    for count, t in enumerate(times, 1):
        assert count <= 200 * (t - times[0]) + 1 + 10, (count, t - times[0])
    # Every worker on both hosts took part.
    by_worker = {r[4] for r in starts(tmp_path)}
    assert len(by_worker) == 4, by_worker
    assert any("-h0-" in w for w in by_worker) and any("-h1-" in w for w in by_worker)


def most_in_flight(rows):
    """The most items of each key running at once, from start/end records."""
    running, most = {}, {}
    for what, _, key, _, _ in rows:
        running[key] = running.get(key, 0) + (1 if what == "start" else -1)
        most[key] = max(most.get(key, 0), running[key])
    return most


def test_max_in_flight_per_key_is_never_exceeded(tmp_path, processes):
    broker = Broker(str(tmp_path), pipeline(["key = header:tenant",
                                             "max-in-flight-per-key = 2"]))
    try:
        start_workers(processes, tmp_path, broker.endpoint, 4)
        rng = random.Random(34)
        n = 0
        with zflow.Client(broker.endpoint) as client:
            for tenant in range(10):
                key = "t%d" % tenant
                bodies = []
                for _ in range(20):
                    bodies.append({"key": key, "n": n, "ms": rng.randint(5, 40)})
                    n += 1
                client.put_many("jobs", bodies, headers={"tenant": key})
        wait_for(lambda: sum(1 for r in records(tmp_path) if r[0] == "end") >= n, timeout=60,
                 what="every item ended")
        rows = records(tmp_path)
        assert len(rows) == 2 * n
        most = most_in_flight(rows)
        assert len(most) == 10
        assert max(most.values()) == 2, most  # reached, never passed
    finally:
        broker.stop()


def test_a_rate_per_key_with_a_thousand_keys(tmp_path, processes):
    broker = Broker(str(tmp_path), pipeline(["key = header:tenant", "rate-per-key = 4/s"]))
    try:
        start_workers(processes, tmp_path, broker.endpoint, 2)
        n = 0
        with zflow.Client(broker.endpoint) as client:
            for tenant in range(1000):
                key = "t%d" % tenant
                client.put_many("jobs", [{"key": key, "n": n + i} for i in range(3)],
                                headers={"tenant": key})
                n += 3
        wait_for(lambda: len(starts(tmp_path)) >= n, timeout=60, what="every item started")
        by_key = {}
        for _, when, key, item, _ in starts(tmp_path):
            by_key.setdefault(key, []).append((when, item))
        assert len(by_key) == 1000
        for key, seen in by_key.items():
            assert [item for _, item in seen] == sorted(item for _, item in seen), key
            # 4/s: 250 ms apart, less what a late look makes up (10 ms at
            # most), and the workers' own clock reading.
            span = seen[-1][0] - seen[0][0]
            assert span >= 0.5 - 0.02 - 0.02, (key, span)
    finally:
        broker.stop()


def test_throttled_items_and_busiest_keys_are_shown(tmp_path, processes):
    metrics = "127.0.0.1:%d" % free_port()
    broker = Broker(str(tmp_path), "broker\n    metrics = %s\n" % metrics
                    + pipeline(["key = header:tenant", "rate-per-key = 1/min"]))
    try:
        with zflow.Client(broker.endpoint) as client:
            waiting = client.put_many("jobs", [{"key": "acme", "n": n} for n in range(3)],
                                      headers={"tenant": "acme"})
            client.put_many("jobs", [{"key": "zeta", "n": n} for n in (3, 4)],
                            headers={"tenant": "zeta\x1b[2J"})
        start_workers(processes, tmp_path, broker.endpoint, 1)
        wait_for(lambda: len(starts(tmp_path)) >= 2, what="a first item of each key")

        def zflow_cli(*args):
            done = subprocess.run([ZFLOW] + list(args), capture_output=True, text=True,
                                  timeout=30)
            assert done.returncode == 0, done.stderr
            return done.stdout

        status = zflow_cli("status", broker.endpoint)
        group = [l for l in status.splitlines() if l.split()[:2] == ["jobs", "paced"]]
        assert group and group[0].split()[3:5] == ["3", "3"], status  # ready 3, throttled 3
        keys = [l.split() for l in status.splitlines() if l.startswith("jobs ")][-2:]
        assert keys[0] == ["jobs", "paced", "acme", "2", "0", "throttled"], status
        # A terminal's escape in a key is not passed on.
        assert keys[1] == ["jobs", "paced", "zeta?[2J", "1", "0", "throttled"], status
        # The two acme items not yet delivered say why they wait.
        states = [zflow_cli("status", broker.endpoint, str(w.id)).split()[1] for w in waiting]
        assert sorted(states) == ["done", "throttled", "throttled"], states
        top = zflow_cli("top", broker.events, "--once")
        assert "3 throttled" in top and "acme 2 throttled" in top, top

        def samples():
            text = urllib.request.urlopen("http://%s/metrics" % metrics, timeout=5).read()
            found = {}
            for family in text_string_to_metric_families(text.decode()):
                for sample in family.samples:
                    found[(sample.name, sample.labels.get("key"))] = sample.value
            return found
        wait_for(lambda: samples().get(("zflow_key_ready", "acme")) == 2, what="/metrics")
        found = samples()
        assert found[("zflow_group_throttled", None)] == 3, found
        assert found[("zflow_group_keys", None)] == 2, found
        assert found[("zflow_key_ready", "zeta\x1b[2J")] == 1, found
        assert found[("zflow_key_inflight", "acme")] == 0, found
    finally:
        broker.stop()


class Origin:
    """An HTTP server on a free port of 127.0.0.1 recording when each
    request came."""

    def __init__(self):
        import http.server
        import threading
        import time
        times = self.times = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                times.append(time.time())
                body = b"ok"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_fetchers_rate_per_host_holds_across_its_workers(tmp_path, runs):
    # key = url-host: the producer sets each URL's host and port as its key,
    # and the broker spaces each site's requests over all 4 fetch workers.
    origins = [Origin(), Origin()]
    try:
        items = "".join("            item = http://127.0.0.1:%d/p%d\n" % (o.port, i)
                        for o in origins for i in range(8))
        config = ("pipeline\n    name = polite\nqueues\n    urls\n        key = url-host\n"
                  "        rate-per-key = 5/s\nactors\n    urls\n        kind = producer\n"
                  "        output = urls\n        items\n" + items +
                  "    fetch\n        kind = fetcher\n        input = urls\n"
                  "        output = pages\n        workers = 4\n"
                  "    keep\n        kind = sink\n        input = pages\n        target = null\n")
        run = runs(tmp_path, config)
        assert run.process.wait(timeout=90) == 0, run.log()
        for origin in origins:
            times = sorted(origin.times)
            assert len(times) == 8, times
            gaps = [b - a for a, b in zip(times, times[1:])]
            # 5/s: 200 ms apart, less what a late look makes up (10 ms) and
            # the time from delivery to request.
            assert min(gaps) >= 0.2 - 0.01 - 0.04, gaps
            assert times[-1] - times[0] >= 7 * 0.2 - 0.05, times
        # Each site had its own key: their requests went side by side (one
        # key for all would have fetched the first site's pages, then the
        # second's, in the order they were put).
        first, second = origins
        assert min(second.times) < max(first.times), (first.times, second.times)
    finally:
        for origin in origins:
            origin.close()


# The URLs of test_a_key_from_each_url (tests/broker/test_broker.c), the
# key each gets, and the key of the relay's output ("out." after "://"): "-"
# when it has none (then the item keeps what it had).
URL_KEYS = [
    ("http://Example.COM/a", "example.com", "out.example.com"),
    ("http://example.com:80/", "example.com", "out.example.com"),
    ("https://example.com:443/x", "example.com", "out.example.com"),
    ("https://example.com:8443/x", "example.com:8443", "out.example.com:8443"),
    ("http://user:pw@site.org/p", "site.org", "site.org"),
    ("http://evil.com\\@good.com/", "evil.com", "out.evil.com"),
    ("nourl?next=http://a.com/", "-", "-"),
    ("mailto:someone@c.org", "-", "-"),
    ("http://bad\x01host/", "-", "-"),  # a control character: no key
]


def test_every_writer_keys_items_by_url(tmp_path, processes):
    # key = url-host is the broker's config alone: the Python client, `zflow
    # put` and a Python worker's outputs all carry their URL's host as
    # zflow-key, because the broker's WELCOME names the queues so keyed.
    broker = Broker(str(tmp_path), (
        "queues\n    urls\n        key = url-host\n        external = true\n"
        "    hosts\n        key = url-host\nactors\n"
        "    relay\n        kind = exec\n        command = \"%s -m zflow worker flowjobs:relay\"\n"
        "        input = urls\n        output = hosts\n"
        "    seen\n        kind = exec\n        command = \"%s -m zflow worker flowjobs:seen\"\n"
        "        input = hosts\n") % (PY, PY))
    try:
        for name in ("relay", "seen"):
            start_workers(processes, tmp_path, broker.endpoint, 1,
                          [PY, "-m", "zflow", "worker", "flowjobs:" + name])
        urls = [url for url, _, _ in URL_KEYS]
        with zflow.Client(broker.endpoint) as client:
            client.put_many("urls", urls)
        put = subprocess.run([ZFLOW, "put", broker.endpoint, "urls"] +
                             [json.dumps(url) for url in urls],
                             capture_output=True, text=True, timeout=30)
        assert put.returncode == 0, put.stderr

        def lines():
            found = []
            for name in os.listdir(str(tmp_path)):
                if name.startswith("keys-"):
                    with open(str(tmp_path / name)) as f:
                        # A line without its newline is being written.
                        found += [line[:-1].split(" ", 2) for line in f if line.endswith("\n")]
            return found
        wait_for(lambda: len(lines()) >= 4 * len(urls), timeout=60,
                 what="every URL read and relayed")
        got = lines()
        ins = [(key, url) for what, key, url in got if what == "in"]
        assert sorted(ins) == sorted(2 * [(key, url) for url, key, _ in URL_KEYS])
        # The relay's outputs have hosts of their own: keyed by them, not by
        # the key each inherited from its input.
        outs = [(key, url.replace("://out.", "://", 1)) for what, key, url in got if what == "out"]
        assert sorted(outs) == sorted(2 * [(out, url) for url, _, out in URL_KEYS])
    finally:
        broker.stop()


def test_a_restarted_broker_hands_out_no_burst(tmp_path, processes):
    # rate = 10/s with burst = 50: a broker that starts anew may hand out 50
    # at once; one killed and started again on its journal takes its
    # buckets as emptied when it began, so from then on it hands out no
    # more than 10 a second (a bucket taken as full would give 50 at once
    # when the workers come back).
    broker = Broker(str(tmp_path), pipeline(["rate = 10/s", "burst = 50"]), journal=True)
    try:
        start_workers(processes, tmp_path, broker.endpoint, 2)
        total = 150
        with zflow.Client(broker.endpoint) as client:
            client.put_many("jobs", [{"key": "k", "n": n} for n in range(total)])
        wait_for(lambda: len(starts(tmp_path)) >= 65, timeout=60, what="the burst and more")
        broker.stop(signal.SIGKILL)
        restarted = time.time()
        broker.start()
        wait_for(lambda: len({r[3] for r in starts(tmp_path)}) >= total, timeout=90,
                 what="every item started")
        after = [r[1] - restarted for r in starts(tmp_path) if r[1] >= restarted]
        assert len(after) >= total - 65, len(after)
        # In every span from the restart on, no more than its length at
        # 10/s (and one for the clock's millisecond).
        for count, t in enumerate(after, 1):
            assert count <= 10 * t + 1, (count, t, after[:count])
    finally:
        broker.stop()
