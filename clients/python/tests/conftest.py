"""Fixtures: a real zflow broker (the build's zflow, $ZFLOW_BIN) on a free
port of 127.0.0.1, and Python workers as processes of their own."""
import json
import os
import pty
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.dirname(HERE))  # the package, from the repo
ZFLOW = os.environ.get("ZFLOW_BIN", os.path.join(ROOT, "build", "zflow"))
PYTHONPATH = os.pathsep.join([os.path.dirname(HERE), HERE])


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "serial: measures a rate or a time that other tests' load would bend; "
        "./scripts/test runs these alone, after the others ran side by side")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """zflow broker PIPELINE on a fixed port (so that a restart keeps it)."""

    def __init__(self, directory, config, journal=False):
        self.directory = directory
        self.path = os.path.join(directory, "p.zpl")
        with open(self.path, "w") as f:
            f.write(config)
        self.port = free_port()
        self.endpoint = "tcp://127.0.0.1:%d" % self.port
        self.events = "tcp://127.0.0.1:%d" % free_port()
        self.journal = os.path.join(directory, "journal") if journal else None
        self.process = None
        self.start()

    def start(self):
        argv = [ZFLOW, "broker", self.path, "--endpoint", self.endpoint, "--events", self.events]
        if self.journal:
            argv += ["--journal", self.journal]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        line = self.process.stdout.readline()  # the broker says where it listens
        if "connect to" not in line:
            raise RuntimeError("the broker did not start: %s %s"
                               % (line, self.process.stderr.read()))

    def stop(self, sig=signal.SIGTERM):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=10)
        if self.process:
            self.process.stdout.close()
            self.process.stderr.close()
        self.process = None


class Processes:
    """Processes a test starts, stopped after it whatever happens."""

    def __init__(self):
        self.started = []

    def worker(self, broker, target, *args):
        env = dict(os.environ, PYTHONPATH=PYTHONPATH)
        process = subprocess.Popen([sys.executable, "-m", "zflow", "worker", target,
                                    "--broker", broker.endpoint] + list(args), env=env,
                                   stderr=open(os.path.join(broker.directory, "worker.log"), "a"))
        self.started.append(process)
        return process

    def actor(self, broker, name):
        process = subprocess.Popen([ZFLOW, "actor", name, broker.path, "--broker",
                                    broker.endpoint],
                                   stdout=subprocess.DEVNULL,
                                   stderr=open(os.path.join(broker.directory, name + ".log"), "a"))
        self.started.append(process)
        return process

    def stop_all(self):
        for process in self.started:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@pytest.fixture
def processes():
    p = Processes()
    yield p
    p.stop_all()


def wait_for(predicate, timeout=20, what="the condition"):
    """Polls predicate until true, for at most timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("%s did not come within %s s" % (what, timeout))


class Run:
    """`zflow run PIPELINE` with its journal, the broker inside it on free
    ports of 127.0.0.1; its exec actors find the package and the tests'
    modules, and JOBS_DIR (the test's directory) for their side effects."""

    def __init__(self, directory, config, *args, broker="", endpoint=None, terminal=False):
        """broker: keys for the broker's section, which this writes; or
        endpoint: the broker's, in the config's own section. terminal: its
        stderr is a terminal (the live view draws there), kept as the log."""
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.endpoint = endpoint or "tcp://127.0.0.1:%d" % free_port()
        self.events = "tcp://127.0.0.1:%d" % free_port()
        self.path = os.path.join(directory, "p.zpl")
        with open(self.path, "w") as f:
            if not endpoint:
                f.write("broker\n    endpoint = %s\n    events = %s\n%s"
                        % (self.endpoint, self.events, broker))
            f.write(config)
        self.log_path = os.path.join(directory, "run.log")
        env = dict(os.environ, PYTHONPATH=PYTHONPATH, JOBS_DIR=directory,
                   PATH="/usr/bin:" + os.environ.get("PATH", ""))
        stderr = open(self.log_path, "w")
        if terminal:
            master, slave = pty.openpty()
            env["TERM"] = "xterm"
            threading.Thread(target=self._copy, args=(master, stderr), daemon=True).start()
            stderr = slave
        self.process = subprocess.Popen(
            [ZFLOW, "run", self.path, "--state", os.path.join(directory, "state")] + list(args),
            stdin=subprocess.DEVNULL, stdout=open(os.path.join(directory, "run.out"), "w"),
            stderr=stderr, env=env)
        if terminal:
            os.close(slave)

    @staticmethod
    def _copy(master, log):
        """What the run writes on its terminal, into its log, to the end."""
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the run, and all it started, closed it
                data = b""
            if not data:
                break
            log.write(data.decode(errors="replace"))
            log.flush()
        os.close(master)
        log.close()

    def client(self, timeout=30):
        """A Client of the run's broker, once it answers (failing at once,
        with the run's log, if the run ended)."""
        import zflow
        deadline = time.monotonic() + 20
        while True:
            if self.process.poll() is not None:
                raise AssertionError("zflow run ended (%d): %s"
                                     % (self.process.returncode, self.log()))
            client = zflow.Client(self.endpoint, timeout=timeout)
            try:
                client.session.ensure_open(1)
                return client
            except zflow.BrokerError:
                client.close()
                if time.monotonic() > deadline:
                    raise

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def output(self):
        """What the run and its workers printed on their standard output."""
        with open(os.path.join(self.directory, "run.out"), errors="replace") as f:
            return f.read()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture
def runs():
    started = []

    def start(directory, config, *args, broker="", terminal=False):
        run = Run(str(directory), config, *args, broker=broker, terminal=terminal)
        started.append(run)
        return run
    yield start
    for run in started:
        run.stop()


def side_effects(directory, name):
    """The lines the jobs wrote to NAME in the test's directory."""
    try:
        with open(os.path.join(str(directory), name)) as f:
            text = f.read()
    except FileNotFoundError:
        return []
    # What follows the last newline is a line a job is writing now.
    return text[:text.rfind("\n") + 1].split()


# A service for the HTTP and hostile-input tests: poison (a Python worker
# that returns its item, and kills its process on {"poison": true}) and
# gate (a worker that holds each item until the file `released` is in the
# test's directory; two items fill it).
GATED = """\
pipeline
    results = done
queues
    poison
        external = true
        max-attempts = 2
        retry-base = 10ms
        retry-max = 10ms
    gate
        external = true
        max-depth = 2
actors
    py
        kind = exec
        command = "/usr/bin/python3 -m zflow worker jobs:crash_on_poison"
        input = poison
        output = done
    held
        kind = exec
        command = "/usr/bin/python3 -m zflow worker jobs:wait_for_release"
        input = gate
        output = done
"""


# A broker's pipeline of one external queue, `tasks`, of max-depth %d (a
# sink reads another queue: a pipeline has an actor).
SMALL = """queues
    tasks
        external = true
        max-depth = %d
    other
        external = true
actors
    keep
        kind = sink
        input = other
        target = null
"""


def http(address, method, path, body=None, headers=None, tls=None):
    """(status, headers, JSON answer) of one request to an HTTP gateway
    (over HTTPS with tls, an ssl.SSLContext)."""
    request = urllib.request.Request("%s://%s%s" % ("https" if tls else "http", address, path),
                                     data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30, context=tls) as answer:
            return answer.status, answer.headers, json.loads(answer.read())
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read())
