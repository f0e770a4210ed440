"""Steering a running service from the command line and over HTTP: dead
letters listed, requeued (their roots' results follow) and purged; queues
paused, resumed and purged; all of it kept across a broker killed -9."""
import json
import os
import pty
import signal
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
actors
    flaky
        kind = exec
        command = "/usr/bin/python3 -m zflow worker jobs:flaky"
        input = tasks
        output = done
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
