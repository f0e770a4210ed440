"""A running pipeline changed in place: SIGHUP (or zflow reload) reads its
file again. A file with a mistake is refused and the run goes on; a good
one starts actors added, stops those removed (an actor replaced by
another on the same queue hands it what was queued), and loses and
duplicates nothing of a stream in flight."""
import collections
import json
import os
import signal
import time
import subprocess

from conftest import ZFLOW, Run, wait_for

N = 100000

PIPELINE = """pipeline
    name = reloaded
queues
    numbers
        max-depth = 5000
actors
    nums
        kind = producer
        source = seq:%d
        output = numbers
    %s
        kind = exec
        command = "/usr/bin/python3 -m zflow worker workers:copy"
        input = numbers
        output = copies
        workers = %d
    store
        kind = sink
        input = copies
        target = file:out.jsonl
"""


def written(run):
    try:
        with open(os.path.join(run.directory, "out.jsonl")) as f:
            return [json.loads(line) for line in f.read().splitlines() if line]
    except FileNotFoundError:
        return []


def worker_pid(run, actor):
    """The pid of the run's worker process of a built-in actor: a child of
    the run whose command line is `zflow actor NAME ...`."""
    for entry in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv = f.read().split(b"\0")
            with open("/proc/%s/stat" % entry, "rb") as f:
                parent = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if argv[1:3] == [b"actor", actor.encode()] and parent == run.process.pid:
            return int(entry)
    return None


def rewrite(run, text):
    with open(run.path, "w") as f:
        f.write("broker\n    endpoint = %s\n    events = %s\n%s" % (run.endpoint, run.events, text))


def test_a_reload_replaces_an_actor_mid_stream_and_loses_nothing(tmp_path):
    run = Run(str(tmp_path), PIPELINE % (N, "copy_a", 1))
    try:
        wait_for(lambda: len(written(run)) >= N // 10, timeout=60, what="a tenth of the stream")
        # A typo: refused, said where, and the run goes on as it was.
        rewrite(run, (PIPELINE % (N, "copy_a", 1)).replace("input = numbers", "inptu = numbers"))
        run.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload refused" in run.log(), what="the refusal")
        # A worker that dies meanwhile starts again on the version running.
        os.kill(worker_pid(run, "store"), signal.SIGKILL)
        wait_for(lambda: "store/0 exited" in run.log() or "store/0 was killed" in run.log(),
                 what="the sink's death seen")
        wait_for(lambda: worker_pid(run, "store") is not None, what="the sink started again")
        time.sleep(1)  # a worker that read the broken file would have exited by now
        assert "exited with status 2" not in run.log(), run.log()[-2000:]
        with open(run.path) as f:
            line = 1 + f.read().splitlines().index("        inptu = numbers")
        log = run.log()
        assert "p.zpl:%d: actor 'copy_a' (exec): unknown key 'inptu' (did you mean 'input'?)" \
            % line in log, log[-2000:]
        # copy_a replaced by copy_b (two workers), mid-stream, with zflow reload.
        rewrite(run, PIPELINE % (N, "copy_b", 2))
        assert len(written(run)) < N  # mid-stream
        done = subprocess.run([ZFLOW, "reload", run.endpoint], capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr
        wait_for(lambda: "copy_b replaces copy_a" in run.log(), what="the replacement")
        assert run.process.wait(timeout=240) == 0, run.log()[-3000:]
        log = run.log()
        assert "copy_a/0: stopped by the reload" in log, log[-3000:]
        assert "2 worker processes started, 1 stopped" in log, log[-3000:]
        counts = collections.Counter(written(run))
        lost = [n for n in range(N) if counts[n] == 0]
        twice = [n for n, c in counts.items() if c > 1]
        assert (len(lost), len(twice), len(counts)) == (0, 0, N), (lost[:10], twice[:10])
    finally:
        run.stop()


def test_a_broker_takes_new_queue_settings_on_sighup(tmp_path):
    import zflow
    from conftest import SMALL, Broker
    config = SMALL
    broker = Broker(str(tmp_path), config % 2)
    try:
        with zflow.Client(broker.endpoint, timeout=2) as client:
            client.put_many("tasks", [1, 2])
            try:
                client.put("tasks", 3, timeout=1)
                raise AssertionError("a put past max-depth 2 was taken")
            except zflow.Refused as refused:
                assert "max-depth 2" in str(refused)
            with open(broker.path, "w") as f:
                f.write(config % 10)
            broker.process.send_signal(signal.SIGHUP)
            wait_for(lambda: "reading" in broker.process.stdout.readline(), what="the reload")
            def taken():
                try:
                    client.put("tasks", 3, timeout=1)
                    return True
                except zflow.Refused:
                    return False
            wait_for(taken, what="room from the new max-depth")
            client.put_many("tasks", range(4, 10))  # 9 in all, within 10
        assert broker.process.poll() is None  # SIGHUP did not end it
    finally:
        broker.stop()


def test_a_run_with_a_broker_of_its_own_hands_a_replacement_over(tmp_path):
    from conftest import Broker
    n = 30000
    (tmp_path / "broker").mkdir()
    broker = Broker(str(tmp_path / "broker"), PIPELINE % (n, "copy_a", 1))
    run = Run(str(tmp_path / "run"), PIPELINE % (n, "copy_a", 1), "--broker", broker.endpoint,
              endpoint=broker.endpoint)
    try:
        wait_for(lambda: len(written(run)) >= n // 10, timeout=60, what="a tenth of the stream")
        with open(run.path, "w") as f:
            f.write(PIPELINE % (n, "copy_b", 1))
        run.process.send_signal(signal.SIGHUP)
        assert run.process.wait(timeout=240) == 0, run.log()[-3000:]
        assert "copy_b replaces copy_a" in run.log()
        counts = collections.Counter(written(run))
        assert (len(counts), max(counts.values())) == (n, 1), run.log()[-2000:]
    finally:
        run.stop()
        broker.stop()
