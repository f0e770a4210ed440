"""Steering a running service from the command line and over HTTP: dead
letters listed, requeued (their roots' results follow) and purged; queues
paused, resumed and purged; all of it kept across a broker killed -9."""
import json
import os
import pty
import signal
import time
import subprocess

from conftest import ZFLOW, free_port, http, side_effects, wait_for
from test_http import healthy

STEERED = """\
pipeline
    results = done
queues
    tasks
        external = true
        max-attempts = 1
    ticks
        external = true
actors
    flaky
        kind = exec
        command = "/usr/bin/python3 -m zflow worker jobs:flaky"
        input = tasks
        output = done
    ticker
        kind = exec
        command = "/usr/bin/python3 -m zflow worker jobs:tick"
        input = ticks
        output = done
    hourly
        kind = scheduler
        cron = "0 * * * *"
        output = ticks
    pulse
        kind = scheduler
        every = 1s
        output = ticks
"""


def zflow(*args, stdin=subprocess.DEVNULL):
    """(exit status, stdout, stderr) of a zflow command."""
    done = subprocess.run([ZFLOW] + [str(a) for a in args], stdin=stdin, capture_output=True,
                          text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def start(runs, directory):
    """The service with its HTTP API: (run, address, client)."""
    address = "127.0.0.1:%d" % free_port()
    run = runs(directory, STEERED, broker="    metrics = %s\n    api = true\n" % address)
    wait_for(lambda: healthy(address), what="the gateway")
    return run, address, run.client()


def states(client, ids):
    return [client.result(i).state for i in ids]


def letters(endpoint, *args):
    status, out, err = zflow("dead", endpoint, "tasks", "--json", "--limit", 256, *args)
    assert status == 0, err
    return json.loads(out)


def test_dead_letters_listed_requeued_by_header_and_their_results_follow(tmp_path, runs):
    open(tmp_path / "broken", "w").close()
    run, address, client = start(runs, tmp_path)
    acme = [client.put("tasks", n, headers={"tenant": "acme"}).id for n in range(20)]
    other = [client.put("tasks", n, headers={"tenant": "other"}).id for n in range(20, 50)]
    wait_for(lambda: states(client, acme + other) == ["dead"] * 50, what="50 dead tasks")

    # Listed by a running broker, oldest first: what died, where, why.
    listing = letters(run.endpoint)
    assert listing["count"] == 50 and len(listing["letters"]) == 50
    assert sorted(l["id"] for l in listing["letters"]) == sorted(acme + other)
    first = listing["letters"][0]
    assert first["root"] == first["id"] and first["queue"] == "tasks"
    assert first["attempts"] == 1 and first["error"] == "RuntimeError: broken for now"
    assert first["headers"]["tenant"] in ("acme", "other") and first["body"] in range(50)
    status, table, _ = zflow("dead", run.endpoint)
    assert status == 0 and table.splitlines()[0].split() == [
        "ID", "ROOT", "QUEUE", "ATTEMPTS", "DIED", "ERROR"]
    assert len(table.splitlines()) == 51
    status, _, err = zflow("dead", run.endpoint, "tasks", "--limit", 5)
    assert status == 0 and "5 of 50 dead letters shown" in err
    status, _, body = http(address, "GET", "/queues/tasks/dead?limit=3&where=tenant=acme")
    assert status == 200 and body["count"] == 20 and len(body["letters"]) == 3

    # The 20 of one tenant requeued, fixed: done, their results the
    # original ids' (the state and result of what was dead follow).
    os.remove(tmp_path / "broken")
    status, out, err = zflow("requeue", run.endpoint, "tasks.dead", "--where", "tenant=acme")
    assert (status, out, err) == (0, "requeued 20 from tasks.dead\n", "")
    for n, task in enumerate(acme):
        result = client.result(task, timeout=20)
        assert (result.state, result.values, result.error) == ("done", [2 * n], ""), result
    assert states(client, other) == ["dead"] * 30
    assert letters(run.endpoint)["count"] == 30

    # A letter requeued twice moves once: the second finds it gone.
    status, out, err = zflow("requeue", run.endpoint, "tasks", acme[0])
    assert status == 1 and out == "requeued 0 from tasks.dead\n"
    assert "1 of the ids named is not in tasks.dead" in err
    assert sorted(map(int, side_effects(tmp_path, "flaky"))) == list(range(20))

    # Over HTTP: one requeued by id, then the rest purged.
    status, _, body = http(address, "POST", "/queues/tasks/dead/requeue",
                           json.dumps({"ids": [other[0]]}).encode())
    assert (status, body["count"], body["queue"]) == (200, 1, "tasks.dead"), body
    assert client.result(other[0], timeout=20).values == [40]
    status, _, body = http(address, "POST", "/queues/tasks/dead/purge", b'{"all": true}')
    assert (status, body["count"]) == (200, 29), body
    assert letters(run.endpoint)["count"] == 0
    client.close()


def test_requeued_letters_survive_a_broker_killed_hard(tmp_path, runs):
    open(tmp_path / "broken", "w").close()
    run, address, client = start(runs, tmp_path)
    tasks = [client.put("tasks", n).id for n in range(10)]
    wait_for(lambda: states(client, tasks) == ["dead"] * 10, what="10 dead tasks")
    status, out, _ = zflow("requeue", run.endpoint, "tasks", *tasks[:4])
    assert (status, out) == (0, "requeued 4 from tasks.dead\n")
    # Still broken: they die again, their letters saying it is a replay.
    wait_for(lambda: letters(run.endpoint)["count"] == 10, what="the requeued dead again")
    again = [l for l in letters(run.endpoint)["letters"] if l["id"] in tasks[:4]]
    assert [l["headers"]["zflow-requeued"] for l in again] == ["1"] * 4
    zflow("pause", run.endpoint, "tasks")

    client.close()
    run.process.send_signal(signal.SIGKILL)
    run.process.wait()
    os.remove(tmp_path / "broken")
    run, address, client = start(runs, tmp_path)
    assert letters(run.endpoint)["count"] == 10
    status, out, _ = zflow("status", run.endpoint)
    assert "paused" in [line.split()[-1] for line in out.splitlines() if line.startswith("tasks ")]
    status, out, _ = zflow("requeue", run.endpoint, "tasks", "--all")
    assert (status, out) == (0, "requeued 10 from tasks.dead\n")
    assert states(client, tasks) == ["queued"] * 10  # paused still, after the restart
    status, out, _ = zflow("resume", run.endpoint, "tasks")
    assert (status, out) == (0, "tasks resumed (items stored: 10)\n")
    for n, task in enumerate(tasks):
        assert client.result(task, timeout=20).values == [2 * n]
    client.close()


def test_a_paused_queue_takes_puts_and_delivers_nothing_until_resumed(tmp_path, runs):
    run, address, client = start(runs, tmp_path)
    status, _, body = http(address, "POST", "/queues/tasks/pause")
    assert (status, body["paused"]) == (200, True), body
    tasks = [client.put("tasks", n).id for n in range(10)]  # each confirmed
    status, _, queues = http(address, "GET", "/queues")
    assert [q["paused"] for q in queues if q["name"] == "tasks"] == [True]
    wait_for(lambda: "zflow_queue_paused{queue=\"tasks\"} 1" in metrics(address),
             what="the metric")
    assert states(client, tasks) == ["queued"] * 10
    assert side_effects(tmp_path, "flaky") == []
    status, _, body = http(address, "POST", "/queues/tasks/resume")
    assert (status, body["paused"], body["count"]) == (200, False, 10), body
    for n, task in enumerate(tasks):
        assert client.result(task, timeout=20).values == [2 * n]

    # Purged: what waits is dropped, its tasks cancelled, saying so.
    zflow("pause", run.endpoint, "tasks")
    waiting = [client.put("tasks", n).id for n in range(5)]
    status, out, err = zflow("purge", run.endpoint, "tasks", "--yes")
    assert (status, out) == (0, "purged 5 from tasks\n"), err
    for task in waiting:
        result = client.result(task)
        assert (result.state, result.error) == ("cancelled", "purged from tasks")
    status, _, body = http(address, "POST", "/queues/tasks/purge", b"{}")
    assert status == 400 and "say which items" in body["error"]
    client.close()


def test_steering_mistakes_are_named(tmp_path, runs):
    run, address, client = start(runs, tmp_path)
    assert zflow("pause", run.endpoint, "nosuch")[0:1] == (2,)
    assert "no queue 'nosuch'" in zflow("pause", run.endpoint, "nosuch")[2]
    status, _, err = zflow("requeue", run.endpoint, "tasks")
    assert status == 2 and "--all" in err
    status, _, err = zflow("requeue", run.endpoint, "tasks", "--where", "tenant")
    assert status == 2 and "not HEADER=VALUE" in err
    status, _, err = zflow("requeue", run.endpoint, "tasks", "0" * 32)
    assert status == 2
    status, _, body = http(address, "POST", "/queues/nosuch/pause")
    assert status == 404 and "no queue 'nosuch'" in body["error"]
    status, _, body = http(address, "POST", "/queues/tasks/dead/requeue", b'{"ids": ["xyz"]}')
    assert status == 400 and "ids[0]" in body["error"]
    status, _, body = http(address, "POST", "/queues/tasks/dead/requeue", b'[1]')
    assert status == 400 and "JSON object" in body["error"]
    status, _, body = http(address, "GET", "/queues/tasks/dead?limit=0")
    assert status == 400
    # A terminal's purge asks first; anything but "yes" drops nothing.
    zflow("pause", run.endpoint, "tasks")
    task = client.put("tasks", 1).id
    master, slave = pty.openpty()
    purge = subprocess.Popen([ZFLOW, "purge", run.endpoint, "tasks"], stdin=slave,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    os.close(slave)
    os.write(master, b"no\n")
    out, err = purge.communicate(timeout=30)
    os.close(master)
    assert purge.returncode == 1 and "Type yes" in err and "nothing dropped" in err, err
    assert client.status(task) == "queued"
    client.close()


def metrics(address):
    import urllib.request
    with urllib.request.urlopen("http://%s/metrics" % address, timeout=10) as answer:
        return answer.read().decode()


def schedules(endpoint):
    status, out, err = zflow("schedule", endpoint, "list", "--json")
    assert status == 0, err
    return {row["name"]: row for row in map(json.loads, out.splitlines())}


def ticks(directory, job="beat"):
    return [t.split("@")[1] for t in side_effects(directory, "ticks") if t.startswith(job + "@")]


def test_a_schedule_added_at_run_time_fires_at_its_times_and_survives_a_kill(tmp_path, runs):
    run, address, client = start(runs, tmp_path)
    client.close()
    status, out, err = zflow("schedule", run.endpoint, "add", "beat", "--cron", "* * * * * *",
                             "--queue", "ticks", "--payload", '{"n": 1}')
    assert status == 0, (out, err)
    assert "beat" in out and "cron * * * * * *" in out
    wait_for(lambda: len(ticks(tmp_path)) >= 3, what="three firings")
    fired = ticks(tmp_path)
    # Each on its second, each second once.
    assert all(t.endswith(".000+00:00") for t in fired), fired
    assert len(set(fired)) == len(fired)
    listed = schedules(run.endpoint)
    assert listed["beat"]["state"] == "active" and listed["beat"]["queue"] == "ticks"
    assert listed["hourly"]["state"] == "config"  # the config file's, listed beside
    status, _, err = zflow("schedule", run.endpoint, "remove", "hourly")
    assert status == 2 and "config file" in err
    # A second scheduler of the config's pulse beside the run's, and the
    # broker firing beat: each time of each is put once.
    second = subprocess.Popen([ZFLOW, "actor", "pulse", run.path, "--broker", run.endpoint],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        count = len(ticks(tmp_path, "pulse"))
        wait_for(lambda: len(ticks(tmp_path, "pulse")) >= count + 3, what="pulse's firings")
        assert second.poll() is None  # it ran all along
    finally:
        second.terminate()
        second.wait(timeout=10)
    pulses = ticks(tmp_path, "pulse")
    assert len(set(pulses)) == len(pulses), pulses

    # Killed hard and started again: the schedule is there and goes on,
    # no second firing of any time.
    run.process.send_signal(signal.SIGKILL)
    run.process.wait()
    before = len(ticks(tmp_path))
    run, address, client = start(runs, tmp_path)
    client.close()
    assert "beat" in schedules(run.endpoint)
    wait_for(lambda: len(ticks(tmp_path)) >= before + 3, what="firings after the restart")
    fired = ticks(tmp_path)
    assert len(set(fired)) == len(fired), fired

    # Paused, it fires nothing; fired now, once; removed, gone.
    assert zflow("schedule", run.endpoint, "pause", "beat")[0] == 0
    count = schedules(run.endpoint)["beat"]["fired"]
    time.sleep(2.5)  # two of its times pass
    assert schedules(run.endpoint)["beat"]["fired"] == count
    assert schedules(run.endpoint)["beat"]["state"] == "paused"
    assert zflow("schedule", run.endpoint, "run", "beat")[0] == 0
    assert schedules(run.endpoint)["beat"]["fired"] == count + 1
    assert zflow("schedule", run.endpoint, "remove", "beat")[0] == 0
    assert "beat" not in schedules(run.endpoint)


def test_a_one_shot_whose_time_passed(tmp_path, runs):
    """An --at already past: within its misfire-grace it fires at once,
    late; beyond it the add is refused, saying why (it would never fire),
    from the command line and over HTTP."""
    run, address, client = start(runs, tmp_path)
    client.close()
    past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 2))
    status, out, err = zflow("schedule", run.endpoint, "add", "late", "--at", past,
                             "--queue", "ticks", "--misfire-grace", "1m")
    assert status == 0, err
    wait_for(lambda: ticks(tmp_path, "late"), what="the late firing")
    assert schedules(run.endpoint)["late"]["fired"] == 1
    status, out, err = zflow("schedule", run.endpoint, "add", "gone", "--at",
                             "2020-01-01T00:00:00Z", "--queue", "ticks")
    assert status == 2 and "at 2020-01-01T00:00:00Z is" in err and "would never fire" in err, err
    assert "gone" not in schedules(run.endpoint)
    body = json.dumps({"at": "2020-01-01T00:00:00Z", "queue": "ticks"}).encode()
    status, _, answer = http(address, "PUT", "/schedules/gone", body)
    assert status == 400 and "would never fire" in answer["error"], (status, answer)


def test_schedules_over_http(tmp_path, runs):
    run, address, client = start(runs, tmp_path)
    client.close()
    body = json.dumps({"every": "1s", "queue": "ticks", "payload": {"k": 1}}).encode()
    status, _, answer = http(address, "PUT", "/schedules/web", body)
    assert status == 200 and answer["trigger"] == "every 1s", answer
    wait_for(lambda: len(ticks(tmp_path, "web")) >= 2, what="two firings")
    status, _, listed = http(address, "GET", "/schedules")
    assert status == 200 and {"web", "hourly"} <= {row["name"] for row in listed}
    status, _, one = http(address, "GET", "/schedules/web")
    assert status == 200 and one["queue"] == "ticks"
    status, _, paused = http(address, "POST", "/schedules/web/pause")
    assert status == 200 and paused["state"] == "paused"
    status, _, _ = http(address, "POST", "/schedules/web/run")
    assert status == 200
    status, _, _ = http(address, "DELETE", "/schedules/web")
    assert status == 200
    status, _, answer = http(address, "GET", "/schedules/web")
    assert status == 404, answer
    # Mistakes, named: 404 for what is not there, 400 for the rest.
    for bad, says, want in [(b'{"every": "1s"}', "queue", 400),
                            (b'{"queue": "ticks"}', "one of cron, every or at", 400),
                            (b'{"cron": "* *", "queue": "ticks"}', "cron", 400),
                            (b'{"every": "soon", "queue": "ticks"}', "every", 400),
                            (b'{"every": "1s", "queue": "nosuch"}', "no queue", 404),
                            (b'{"every": "1s", "queue": "ticks", "tz": "Mars/Base"}', "tz", 400),
                            (b'{"every": "1s", "queue": "ticks", "color": 1}', "color", 400),
                            (b'[1]', "JSON object", 400)]:
        status, _, answer = http(address, "PUT", "/schedules/x", bad)
        assert status == want and says in answer["error"], (bad, status, answer)
    status, _, answer = http(address, "DELETE", "/schedules/hourly")
    assert status == 400 and "config file" in answer["error"]
    for method, path in (("DELETE", "/schedules/nosuch"), ("POST", "/schedules/nosuch/pause"),
                         ("POST", "/schedules/nosuch/run")):
        status, _, answer = http(address, method, path)
        assert status == 404 and "no schedule 'nosuch'" in answer["error"], (path, answer)


def test_a_schedule_into_a_full_queue_skips_its_firings(tmp_path):
    from conftest import SMALL, Broker
    broker = Broker(str(tmp_path), SMALL % 3)
    try:
        e = broker.endpoint
        assert zflow("schedule", e, "add", "fast", "--every", "10ms", "--queue", "tasks")[0] == 0
        wait_for(lambda: schedules(e)["fast"]["missed"] >= 20, what="skipped firings")
        row = schedules(e)["fast"]
        assert row["fired"] == 3, row  # as many as the queue had room for
        assert zflow("schedule", e, "remove", "fast")[0] == 0
        assert zflow("purge", e, "tasks", "--yes")[1] == "purged 3 from tasks\n"
        time.sleep(0.5)
        status, out, _ = zflow("status", e)
        assert [line.split()[1] for line in out.splitlines() if line.startswith("tasks ")][0] == "0"
    finally:
        broker.stop()
