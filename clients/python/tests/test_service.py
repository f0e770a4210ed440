"""zflow run as an always-on service: a worker that crashes on some items
costs those items, not the service; whatever way zflow run ends, no
process it started outlives it; SIGHUP does not end it."""
import os
import signal
import subprocess
import sys
import time
import urllib.request

import msgpack
import pytest
import zmq

import zflow
from conftest import PYTHONPATH, ZFLOW, Broker, free_port, side_effects, wait_for

PY = "/usr/bin/python3 -m zflow worker"


def service(*actors, queue_keys="", actor_keys=""):
    """An external queue per actor (name, command, queue), results to done;
    an actor named co is a processor (its command a coprocess)."""
    text = "pipeline\n    results = done\nqueues\n"
    for _, _, queue in actors:
        text += "    %s\n        external = true\n%s" % (queue, queue_keys)
    text += "actors\n"
    for name, command, queue in actors:
        text += ("    %s\n        kind = %s\n        command = \"%s\"\n"
                 "        input = %s\n        output = done\n%s"
                 % (name, "processor" if name == "co" else "exec", command, queue, actor_keys))
    return text


def started(pid):
    """When process pid started (its /proc stat's 22nd field), or None when
    it is gone or a zombie."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == b"Z" else fields[19]


def of_the_run(pid, known=()):
    """The processes whose environment names zflow run `pid` as their
    supervisor, its children, those of known ((pid, started) pairs) still
    there, and every process in the group of one of them."""
    needle = b"ZFLOW_SUPERVISOR_PID=%d\0" % pid
    found, groups = set(), set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as f:
                environ = f.read() + b"\0"
            with open("/proc/%s/stat" % entry, "rb") as f:
                parent = int(f.read().rsplit(b")", 1)[1].split()[1])
            if (needle in environ or parent == pid
                    or (int(entry), started(int(entry))) in known):
                found.add(int(entry))
                groups.add(os.getpgid(int(entry)))
        except (OSError, ValueError, IndexError):
            pass
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.getpgid(int(entry)) in groups - {os.getpgid(0)}:
                found.add(int(entry))
        except OSError:
            pass
    found.discard(pid)
    return found


def test_kill_9_of_zflow_run_leaves_no_process(tmp_path, runs):
    # A Python worker started through exec, a shell that stays (a list)
    # with a child of its own, and a processor's coprocess.
    run = runs(tmp_path, service(("py", PY + " jobs:crash_on_poison", "poison"),
                                 ("shell", "sleep 600; true", "idle"),
                                 ("co", "sleep 600; cat", "co")),
               "--no-journal")
    with run.client() as client:
        assert client.put("poison", {"n": 1}).get(timeout=20) == {"n": 1}
    wait_for(lambda: len(of_the_run(run.process.pid)) >= 4, what="the run's processes")
    before = of_the_run(run.process.pid)
    # Known by when each started too: a pid given to another later is not it.
    known = {(p, started(p)) for p in before}
    run.process.kill()
    run.process.wait()
    deadline = time.monotonic() + 3
    while of_the_run(run.process.pid, known) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = of_the_run(run.process.pid, known)
    assert not left, "%d of %d processes outlived zflow run: %s" % (
        len(left), len(before), [open("/proc/%d/cmdline" % p, "rb").read() for p in left])


def test_sighup_is_logged_and_ignored(tmp_path, runs):
    run = runs(tmp_path, service(("py", PY + " jobs:crash_on_poison", "poison")), "--no-journal")
    with run.client() as client:
        assert client.put("poison", {"n": 1}).get(timeout=20) == {"n": 1}
        run.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP" in run.log(), what="the SIGHUP line")
        assert client.put("poison", {"n": 2}).get(timeout=20) == {"n": 2}
    assert run.process.poll() is None, run.log()
    assert run.stop() == 0


@pytest.mark.serial
def test_a_worker_whose_supervisor_is_gone_hands_back_and_ends(tmp_path, processes):
    # A worker that no process group or parent-death signal reaches (a
    # shell's child, say) sees that its zflow run is gone, says BYE
    # within 2 s, and the item it held goes to the next worker.
    broker = Broker(str(tmp_path), service(("h", "true", "held")))
    supervisor = subprocess.Popen(["sleep", "60"])
    env = dict(os.environ, PYTHONPATH=PYTHONPATH, JOBS_DIR=str(tmp_path),
               ZFLOW_SUPERVISOR_PID=str(supervisor.pid))
    log = os.path.join(str(tmp_path), "worker.log")
    worker = subprocess.Popen([sys.executable, "-m", "zflow", "worker", "jobs:hold_until_released",
                               "--broker", broker.endpoint], env=env, stderr=open(log, "w"))
    processes.started.append(worker)
    try:
        with zflow.Client(broker.endpoint, timeout=30) as client:
            handle = client.put("held", 7)
            wait_for(lambda: side_effects(tmp_path, "holding") == ["7"], what="the item held")
            supervisor.kill()
            supervisor.wait()
            gone = time.monotonic()
            worker.wait(timeout=10)
            took = time.monotonic() - gone
            with open(log) as f:
                text = f.read()
            assert "is gone: stopping, handing back 1 items" in text, text
            assert took < 3, "%.1f s after its supervisor ended" % took  # 2 s, and slack
            open(os.path.join(str(tmp_path), "released"), "w").close()
            del env["ZFLOW_SUPERVISOR_PID"]
            processes.started.append(subprocess.Popen(
                [sys.executable, "-m", "zflow", "worker", "jobs:hold_until_released",
                 "--broker", broker.endpoint], env=env, stderr=open(log, "a")))
            assert handle.get(timeout=20) == 7
    finally:
        broker.stop()


@pytest.mark.parametrize("shell", ["", "cd . && "], ids=["exec", "under a shell"])
def test_an_item_that_kills_its_worker_is_dead_with_the_cause(tmp_path, runs, shell):
    # Each worker holds one item at a time: only the poison one is charged
    # with the deaths it causes. A command the shell stays for: the worker
    # has a pid of its own, and the shell exits with its status.
    run = runs(tmp_path, service(("py", shell + PY + " jobs:crash_on_poison", "poison"),
                                 queue_keys="        max-attempts = 2\n",
                                 actor_keys="        workers = 2\n        concurrency = 1\n"),
               "--no-journal")
    with run.client() as client:
        handles = [client.put("poison", {"n": n, "poison": n == 7}) for n in range(20)]
        for n, handle in enumerate(handles):
            result = client.result(handle.id, 30)
            if n == 7:
                assert (result.state, result.error, result.attempts) == \
                    ("dead", "worker died: exit 3", 2), vars(result)
            else:
                assert (result.state, result.values) == ("done", [{"n": n, "poison": False}])
    assert run.process.poll() is None, run.log()
    assert "py/0 exited with status 3" in run.log() or "py/1 exited with status 3" in run.log()


def test_a_crash_loop_backs_off_and_never_ends_a_service(tmp_path, runs):
    # An actor that dies at once, every time: after 6 deaths in a minute
    # it is in a crash loop, restarted in 1 s, then 2 s...; an event says
    # so, and the run goes on. (Its stderr is a terminal: the live view.)
    metrics = "127.0.0.1:%d" % free_port()
    run = runs(tmp_path, service(("py", PY + " jobs:crash_on_poison", "poison"),
                                 ("broken", "exit 3", "idle")), "--no-journal",
               broker="    metrics = %s\n" % metrics, terminal=True)
    context = zmq.Context.instance()
    events = context.socket(zmq.SUB)
    events.setsockopt(zmq.SUBSCRIBE, b"actor.crashloop")
    events.setsockopt(zmq.RCVTIMEO, 30000)
    events.connect(run.events)
    try:
        topic, data = events.recv_multipart()
        first = msgpack.unpackb(data)
        topic, data = events.recv_multipart()
        second = msgpack.unpackb(data)
    finally:
        events.close(linger=0)
    assert (first["actor"], first["worker"], first["reason"]) == ("broken", 0,
                                                                 "worker died: exit 3")
    assert (first["deaths"], first["backoff"]) == (6, 1000)
    assert (second["deaths"], second["backoff"]) == (7, 2000)
    assert "broken/0 keeps dying (6 times in 60 s; exit 3): crash loop, restarting it in 1 s" \
        in run.log()
    # The live view, zflow top and /metrics show it while it lasts.
    wait_for(lambda: "CRASH LOOP (1 worker restarted 1 s to 60 s apart)" in run.log(),
             what="the crash loop in the live view")
    top = subprocess.run([ZFLOW, "top", run.events, "--once"], capture_output=True, text=True,
                         timeout=30)
    assert "crash loop (restarted 1 s to 60 s apart): broken/0" in top.stdout, top
    wait_for(lambda: 'zflow_crashloop{actor="broken",worker="0"} 1' in urllib.request.urlopen(
        "http://%s/metrics" % metrics, timeout=10).read().decode(), what="the crash loop metric")
    with run.client() as client:  # the service answers
        assert client.put("poison", {"n": 1}).get(timeout=20) == {"n": 1}
    assert run.process.poll() is None, run.log()
    assert run.stop() == 0


def test_poison_items_cost_themselves_not_the_service(tmp_path, runs):
    # 1,000 tasks each to a C program that aborts on 3 of them and to a
    # Python worker that calls os._exit(3) on 3; two workers each, one
    # item at a time, 3 attempts. Their workers die 9 times an actor.
    poison = {100, 500, 900}
    testactor = os.path.join(os.path.dirname(ZFLOW), "zf_testactor")
    native = ("exec %s $ZFLOW_ENDPOINT $ZFLOW_ACTOR $ZFLOW_INPUT --worker $ZFLOW_WORKER "
              "--concurrency 1 --emit done --abort-on %s"
              % (testactor, ",".join(map(str, sorted(poison)))))
    run = runs(tmp_path, service(("native", native, "numbers"),
                                 ("py", PY + " jobs:crash_on_poison", "poison"),
                                 queue_keys="        max-attempts = 3\n",
                                 actor_keys="        workers = 2\n        concurrency = 1\n"),
               "--no-journal")
    with run.client() as client:
        native_tasks = [client.put("numbers", n) for n in range(1000)]
        py_tasks = [client.put("poison", {"n": n, "poison": n in poison}) for n in range(1000)]
        done = dead = 0
        for tasks, cause in ((native_tasks, "worker died: killed by signal 6 (Aborted)"),
                             (py_tasks, "worker died: exit 3")):
            for n, task in enumerate(tasks):
                result = client.result(task.id, 60)
                if n in poison:
                    assert (result.state, result.error, result.attempts) == ("dead", cause, 3), \
                        (n, vars(result))
                    dead += 1
                else:
                    assert result.state == "done", (n, vars(result))
                    done += 1
    assert (done, dead) == (1994, 6)
    assert run.process.poll() is None, run.log()
    assert run.stop() == 0


def test_a_worker_waiting_for_a_gone_run_s_broker_ends(tmp_path):
    # Its zflow run (and the broker in it) went before the worker was
    # welcomed: it stops waiting for a broker that will not come back. (Its
    # run is gone before it starts: the same loop sees it, without a race.)
    supervisor = subprocess.Popen(["sleep", "60"])
    supervisor.kill()
    supervisor.wait()
    env = dict(os.environ, PYTHONPATH=PYTHONPATH, JOBS_DIR=str(tmp_path),
               ZFLOW_SUPERVISOR_PID=str(supervisor.pid))
    worker = subprocess.Popen([sys.executable, "-m", "zflow", "worker", "jobs:crash_on_poison",
                               "--broker", "tcp://127.0.0.1:%d" % free_port()],
                              env=env, stderr=subprocess.PIPE, text=True)
    try:
        _, err = worker.communicate(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert "is gone: stopping" in err, err
    assert worker.returncode == 0, err


def test_a_plugin_that_crashes_costs_its_own_item(tmp_path, runs):
    # A processor plugin holds hundreds of items at once; one of them makes
    # it segfault. Every item held with it failed that attempt, so each is
    # tried alone from then on: the crashing one dies alone, 3 times, and is
    # dead with the cause; the 300 others come back.
    plugin = os.path.join(os.path.dirname(ZFLOW), "zf_testplugin.so")
    run = runs(tmp_path, "pipeline\n    results = done\n"
               "queues\n    numbers\n        external = true\n        max-attempts = 3\n"
               "        retry-base = 10ms\n        retry-max = 10ms\n"
               "actors\n    plug\n        kind = processor\n        plugin = %s\n"
               "        input = numbers\n        output = done\n" % plugin, "--no-journal")
    with run.client() as client:
        tasks = [client.put("numbers", n) for n in range(150)]
        crash = client.put("numbers", "crash")
        tasks += [client.put("numbers", n) for n in range(150, 300)]
        for n, task in enumerate(tasks):
            result = client.result(task.id, 60)
            assert (result.state, result.values) == ("done", [2 * n if n < 64 else n]), \
                (n, vars(result))
        result = client.result(crash.id, 60)
        assert (result.state, result.error, result.attempts) == (
            "dead", "worker died: killed by signal 11 (Segmentation fault)", 3), vars(result)
    assert run.process.poll() is None, run.log()
    assert run.stop() == 0
