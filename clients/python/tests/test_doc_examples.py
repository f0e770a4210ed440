"""The examples of the reference pages, run as they stand against real
processes: docs/operations.md's commands and curl calls, docs/processor.md's
and docs/actors.md's programs and plugin, docs/security.md's keys and
docs/deploy.md's commands. (README.md's tour and docs/python.md's example
are test_docs.py's.) A page's example that no longer does what the page
says fails here."""
import json
import os
import re
import shlex
import shutil
import subprocess
import time

from conftest import PYTHONPATH, ROOT, ZFLOW, free_port, http, wait_for
from test_http import healthy

# The broker the examples steer: `tasks` fails its items while the file
# `broken` is in the test's folder (jobs:flaky); the queues the schedules
# put to; a config file's job, `tick`, as operations.md's listing shows.
STEERED = """\
pipeline
    results = done
queues
    tasks
        external = true
        max-attempts = 1
    reports
        external = true
    pings
        external = true
    mail
        external = true
actors
    flaky
        kind = exec
        command = "/usr/bin/python3 -m zflow worker jobs:flaky"
        input = tasks
        output = done
    tick
        kind = scheduler
        every = 1h
        output = ticks
    ticked
        kind = sink
        input = ticks
        target = null
"""

# operations.md's example letter: its id stands for one of the test's.
EXAMPLE_ID = "7ae978f1c79a1e8e26a682a00764110e"


def page(name):
    with open(os.path.join(ROOT, "docs", name)) as f:
        return f.read()


def blocks(text, language=None):
    """The page's code blocks, in order (those of LANGUAGE only, if given)."""
    return [body for lang, body in re.findall(r"```([a-z]*)\n(.*?)```", text, re.S)
            if language is None or lang == language]


def commands(block):
    """The commands of a shell block: comments dropped, continued lines
    joined."""
    joined = block.replace("\\\n", " ")
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def shell(command, directory, **substitutes):
    """(exit status, stdout, stderr) of one of a page's commands, with the
    build's zflow, run by bash in DIRECTORY after the page's words are
    replaced by the test's (the broker's endpoint, its HTTP address...)."""
    for old, new in substitutes.items():
        command = command.replace(old, new)
    command = re.sub(r"^zflow ", shlex.quote(ZFLOW) + " ", command)
    done = subprocess.run(["bash", "-c", command], cwd=str(directory), capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL,
                          env=dict(os.environ, PYTHONPATH=PYTHONPATH,
                                   PATH="/usr/bin:" + os.environ.get("PATH", "")))
    return done.returncode, done.stdout, done.stderr


def letters(endpoint):
    """The letters of tasks.dead, by id."""
    done = subprocess.run([ZFLOW, "dead", endpoint, "tasks", "--json"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return {letter["id"]: letter for letter in json.loads(done.stdout)["letters"]}


def test_the_operations_page_steers_a_running_broker(tmp_path, runs):
    text = page("operations.md")
    shown = blocks(text)
    dead, requeue, queues, schedules = (commands(b) for b in blocks(text, "sh")[:4])
    curl = commands(blocks(text, "sh")[4])
    assert [c.split()[1] for c in dead + requeue + queues] == \
        ["dead"] * 3 + ["requeue"] * 3 + ["pause", "resume", "purge"]
    assert len(schedules) == 6 and all(c.split()[1] == "schedule" for c in schedules)
    assert all(c.startswith("curl ") for c in curl) and len(curl) == 4

    open(tmp_path / "broken", "w").close()
    address = "127.0.0.1:%d" % free_port()
    run = runs(tmp_path, STEERED, broker="    metrics = %s\n    api = true\n" % address)
    wait_for(lambda: healthy(address), what="the gateway")
    client = run.client()
    plain = [client.put("tasks", n).id for n in (1, 2)]
    acme = client.put("tasks", 3, headers={"tenant": "acme"}).id
    wait_for(lambda: len(letters(run.endpoint)) == 3, what="three dead letters")
    ours = dict(directory=tmp_path, **{"tcp://127.0.0.1:5670": run.endpoint,
                                       "localhost:9100": address, EXAMPLE_ID: plain[0]})

    def ok(command):
        status, out, err = shell(command, **ours)
        assert status == 0, "%s: exit %d\n%s%s" % (command, status, out, err)
        return out

    # Dead letters: the table the page shows, then a queue's, then JSON.
    listed = ok(dead[0]).splitlines()
    example = [b for b in shown if b.startswith("ID ")][0].splitlines()
    assert listed[0] == example[0]
    assert sorted(line.split()[0] for line in listed[1:]) == sorted(plain + [acme])
    for line in listed[1:]:
        assert line.split()[1:4] == ["-", "tasks", "1"]
        assert line.endswith("RuntimeError: broken for now")
        assert len(line.split()[4]) == len(example[1].split()[4])  # the time, as shown
    assert len(ok(dead[1]).splitlines()) == 4
    chosen = json.loads(ok(dead[2]))
    assert [letter["id"] for letter in chosen["letters"]] == [acme]
    assert chosen["letters"][0]["headers"]["tenant"] == "acme"

    # Requeued: all, then by header, then by id; each fails again (broken).
    def requeued(command, count, ids):
        before = {i: l.get("headers", {}).get("zflow-requeued") for i, l in
                  letters(run.endpoint).items()}
        assert ok(command).startswith("requeued %d " % count), command

        def back():
            now = letters(run.endpoint)
            return len(now) == 3 and all(
                now[i]["headers"].get("zflow-requeued") != before[i] for i in ids)
        wait_for(back, what="the requeued letters dead again")
    requeued(requeue[0], 3, plain + [acme])
    requeued(requeue[1], 1, [acme])
    requeued(requeue[2], 1, [plain[0]])
    assert letters(run.endpoint)[plain[0]]["headers"]["zflow-requeued"] == "2"
    assert client.status(acme) == "dead"

    # Thrown away, as the prose says (none is a week old).
    prose = re.search(r"`(zflow purge [^`]+)`", " ".join(text.split())).group(1)
    assert ok(prose).strip() == "purged 0 from tasks.dead"

    # Queues: paused (saying so, as the page's comment does), resumed, purged.
    fourth = client.put("tasks", 4).id  # fails once resumed: a fourth letter
    paused = ok(queues[0]).strip()
    comment = re.search(r"# (tasks paused .*)$", blocks(text, "sh")[2].splitlines()[0]).group(1)
    assert re.fullmatch(re.escape(comment).replace("1200", r"\d+"), paused), paused
    ok(queues[1])
    assert "purged 0" in ok(queues[2])

    # Schedules: added, listed as the page shows them, paused, fired now
    # (a one-shot's time, once it passed, a year from now: a time past is
    # refused).
    for command in schedules[:3]:
        at = re.search(r"--at (\S+)", command)
        if at and time.strptime(at.group(1), "%Y-%m-%dT%H:%M:%SZ") < time.gmtime():
            command = command.replace(at.group(1), time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 365 * 86400)))
        ok(command)
    listing = ok(schedules[3]).splitlines()
    example = [b for b in shown if b.startswith("NAME ")][0].splitlines()
    assert listing[0] == example[0]
    rows = {line.split()[0]: line for line in listing[1:]}
    assert sorted(rows) == ["beat", "nightly", "once", "tick"]
    for line in example[1:]:  # name, queue, trigger and zone as shown
        name = line.split()[0]
        assert rows[name][:82] == line[:82], "\n%s\n%s" % (rows[name], line)
    assert ok(schedules[4]).split()[-1] == "paused"
    fired = ok(schedules[5])
    assert "nightly" in fired
    wait_for(lambda: (depth(address, "reports") or 0) >= 1, what="the firing in reports")

    # Over HTTP, the same steering; the cause fixed, acme's task is done.
    wait_for(lambda: fourth in letters(run.endpoint), what="the fourth letter")
    os.remove(tmp_path / "broken")
    answers = [json.loads(ok(command)) for command in curl]
    assert answers[0]["name"] == "beat" and answers[0]["trigger"] == "every 30s"
    assert answers[1]["queue"] == "tasks" and answers[1]["paused"] is True
    assert sorted(letter["id"] for letter in answers[2]["letters"]) == \
        sorted(plain + [acme, fourth])
    assert answers[3]["count"] == 1
    assert client.status(acme) == "queued"  # in tasks, paused over HTTP
    ok(queues[1])
    wait_for(lambda: client.status(acme) == "done", what="acme's task done")
    assert sorted(letters(run.endpoint)) == sorted(plain + [fourth])


def depth(address, queue):
    """QUEUE's depth, as the gateway tells it."""
    status, _, answer = http(address, "GET", "/queues")
    assert status == 200, answer
    return {q["name"]: q["depth"] for q in answer}.get(queue)


def pipeline_run(directory, actors):
    """Runs a pipeline of ACTORS (text of its actors section) to its end
    in DIRECTORY, with the build's zflow on free ports; returns the items
    its sink wrote to out.jsonl."""
    path = os.path.join(str(directory), "p.zpl")
    with open(path, "w") as f:
        f.write("broker\n    endpoint = tcp://127.0.0.1:%d\n    events = tcp://127.0.0.1:%d\n"
                "actors\n%s    keep\n        kind = sink\n        input = out\n"
                "        target = file:out.jsonl\n" % (free_port(), free_port(), actors))
    done = subprocess.run([ZFLOW, "run", path, "--no-journal"], cwd=str(directory),
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env=dict(os.environ, PATH="/usr/bin:" + os.environ.get("PATH", "")))
    assert done.returncode == 0, done.stderr
    with open(os.path.join(str(directory), "out.jsonl")) as f:
        return sorted((json.loads(line) for line in f),
                      key=lambda item: json.dumps(item, sort_keys=True))


# Two pages, one with a body and one without, into the program's queue.
PAGES = """\
    pages
        kind = producer
        output = pages
        items
            item = '{"url": "http://a.test/", "body": "four"}'
            item = '{"url": "http://b.test/"}'
"""


def processor(key, value, extra=""):
    return ("    program\n        kind = processor\n        %s = %s\n        input = pages\n"
            "        output = out\n%s" % (key, value, extra))


def test_the_processor_pages_python_program_reports_a_failed_item(tmp_path):
    program = blocks(page("processor.md"), "python")[0]
    with open(tmp_path / "program.py", "w") as f:
        f.write(program)
    out = pipeline_run(tmp_path, PAGES + processor("command", '"python3 program.py"',
                                                   "        on-error = emit\n"))
    assert out == [{"error": "no body", "item": {"url": "http://b.test/"}},
                   {"size": 4, "url": "http://a.test/"}]


def test_the_actors_pages_python_program(tmp_path):
    program = blocks(page("actors.md"), "python")[0]
    with open(tmp_path / "program.py", "w") as f:
        f.write(re.sub(r"(?m)^  ", "", program))  # indented in its list
    pages = PAGES.replace('"http://b.test/"}', '"http://b.test/", "body": ""}')
    out = pipeline_run(tmp_path, pages + processor("command", '"python3 program.py"'))
    assert out == [{"size": 0, "url": "http://b.test/"}, {"size": 4, "url": "http://a.test/"}]


def test_the_processor_pages_c_command_is_wrap_c_and_runs(tmp_path):
    shown = blocks(page("processor.md"), "c")[0]
    with open(os.path.join(ROOT, "pipelines", "custom", "wrap.c")) as f:
        source = f.read()

    def words(text):
        return " ".join(re.sub(r"//.*", "", text).split())
    assert words(shown) in words(source)
    wrap = os.path.join(os.path.dirname(ZFLOW), "zflow-wrap")
    out = pipeline_run(tmp_path, PAGES + processor("command", wrap))
    assert out == [{"bytes": 24, "item": {"url": "http://b.test/"}},  # its JSON's length
                   {"bytes": 38, "item": {"body": "four", "url": "http://a.test/"}}]


def test_the_processor_pages_plugin_builds_and_runs(tmp_path):
    text = page("processor.md")
    plugin = [b for b in blocks(text, "c") if "zflow_process" in b][0]
    build = re.search(r"Build with `(cc [^`]+)`", text).group(1)
    assert build == "cc -shared -fPIC -I include -o my.so my.c"
    with open(tmp_path / "my.c", "w") as f:
        f.write(plugin)
    status, _, err = shell(build.replace("-I include", "-I %s/include" % ROOT), tmp_path)
    assert status == 0, err
    out = pipeline_run(tmp_path, PAGES + processor("plugin", "my.so"))
    assert out == [{"body": "four", "url": "http://a.test/"}, {"url": "http://b.test/"}]


def test_the_security_pages_keys(tmp_path):
    block = blocks(page("security.md"), "sh")[0]
    for command in commands(block):
        status, _, err = shell(command, tmp_path)
        assert status == 0, "%s: %s" % (command, err)
    made = sorted(os.path.relpath(os.path.join(d, f), str(tmp_path))
                  for d, _, files in os.walk(str(tmp_path)) for f in files)
    assert made == ["certs/allowed/fetch", "certs/broker", "certs/broker_secret",
                    "certs/fetch", "certs/fetch_secret"]
    with open(tmp_path / "certs" / "broker_secret") as f:
        assert "secret-key" in f.read()


def test_the_deploy_pages_commands_write_what_it_says(tmp_path):
    """zflow deploy as the page runs it, into the test's folders (systemctl,
    kubectl and podman are the host's: tests/cli/test_deploy.c checks the
    units with systemd-analyze)."""
    text = page("deploy.md")
    ran = 0
    for block in blocks(text, "sh"):
        for command in commands(block):
            if not command.startswith("zflow deploy "):
                continue
            status, out, err = shell(command, ROOT, **{
                "/etc/systemd/system": str(tmp_path / "systemd"),
                "deploy/crawl": str(tmp_path / "kustomize")})
            assert status == 0, "%s: %s" % (command, err)
            ran += 1
    assert ran == 2
    assert os.path.exists(tmp_path / "systemd" / "zflow-crawl.target")
    assert os.path.exists(tmp_path / "kustomize" / "kustomization.yaml")
    with open(tmp_path / "kustomize" / "pipeline.yaml") as f:
        assert "image: registry.example/zflow:0.1" in f.read()


def test_the_python_pages_first_example(tmp_path):
    """python.md's first lines against pipelines/tasks.zpl (README's
    tour): a task put, its state and its value."""
    first = blocks(page("python.md"), "python")[0]
    assert first.startswith("import zflow\n\nclient = zflow.Client(")
    endpoint, events = "tcp://127.0.0.1:%d" % free_port(), "tcp://127.0.0.1:%d" % free_port()
    env = dict(os.environ, ZFLOW_ENDPOINT=endpoint, ZFLOW_EVENTS=events, PYTHONPATH=PYTHONPATH,
               PATH="/usr/bin:" + os.environ.get("PATH", ""))
    run = subprocess.Popen([ZFLOW, "run", "pipelines/tasks.zpl", "--no-journal"], cwd=ROOT,
                           env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    try:
        with open(tmp_path / "first.py", "w") as f:
            f.write(first.replace("tcp://127.0.0.1:5670", endpoint))
        done = subprocess.run(["/usr/bin/python3", "first.py"], cwd=str(tmp_path), env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert re.fullmatch(r"[0-9a-f]{32} (queued|delivered|done)", lines[0]), lines
        assert lines[1:] == ["{'n': 7, 'square': 49}"]
    finally:
        run.terminate()
        _, err = run.communicate(timeout=60)
    assert run.returncode == 0, err


def test_the_python_pages_install_commands(tmp_path):
    """Both ways python.md gives to have the package: from the repo, and
    pip-installed (into the test's folder, from a copy of the package, so
    that the build pip makes lands there too)."""
    from_repo, installed = commands(blocks(page("python.md"), "sh")[0])
    status, _, err = shell(from_repo, ROOT)
    assert status == 0, err
    assert installed == "pip install ./clients/python"
    shutil.copytree(os.path.join(ROOT, "clients", "python"), tmp_path / "clients" / "python",
                    ignore=shutil.ignore_patterns("tests", "__pycache__"))
    status, out, err = shell("/usr/bin/python3 -m " + installed + " --no-deps --no-build-isolation"
                             " --target site", tmp_path)
    assert status == 0, out + err
    shown = subprocess.run(["/usr/bin/python3", "-c", "import zflow; print(zflow.__file__)"],
                           cwd=str(tmp_path), env=dict(os.environ, PYTHONPATH="site"),
                           capture_output=True, text=True, timeout=60)
    assert shown.stdout.strip() == str(tmp_path / "site" / "zflow" / "__init__.py"), shown.stderr
    assert os.path.exists(tmp_path / "site" / "zflow" / "py.typed")


# What python.md's worker fragments leave to the reader: a mailer, rows to
# read and a store. Each records what it was given in the test's folder.
FRAGMENTS_PRELUDE = """\
import json, os

import aiohttp
import zflow


def record(name, value):
    with open(os.path.join(os.environ["JOBS_DIR"], name), "a") as f:
        f.write(json.dumps(value) + "\\n")


class mailer:
    async def send(to, subject):
        record("mail", [to, subject])


async def read_rows(path):
    with open(path) as f:
        return f.read().split()


async def store(row):
    record("rows", row)

"""


def test_the_python_pages_worker_fragments(tmp_path, runs, monkeypatch):
    """python.md's first worker (send_email) under its pipeline, and its
    worker with a context and start and stop hooks, given what they leave
    to the reader."""
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)  # the worker's own buffering
    shown = blocks(page("python.md"))
    send = [b for b in shown if "async def send_email" in b][0]
    imports = [b for b in shown if "async def import_file" in b][0]
    hooks = [b for b in shown if "@zflow.on_start" in b][0]
    pipeline = [b for b in shown if "jobs:send_email" in b and "actors" in b][0]
    with open(tmp_path / "jobs.py", "w") as f:
        f.write(FRAGMENTS_PRELUDE + send + "\n\n" + imports + "\n\n" + hooks)
    with open(tmp_path / "rows.txt", "w") as f:
        f.write("a\nb\nc\n")
    run = runs(tmp_path, pipeline.replace("actors\n", IMPORTS))
    client = run.client()
    mail = client.put("emails", {"to": "ann@example.org", "subject": "hello"})
    rows = client.put("imports", {"path": str(tmp_path / "rows.txt")})
    assert mail.get(timeout=60) == {"to": "ann@example.org"}
    assert rows.get(timeout=60) == {"rows": 3}
    assert open(tmp_path / "mail").read() == '["ann@example.org", "hello"]\n'
    assert open(tmp_path / "rows").read() == '"a"\n"b"\n"c"\n'
    # What the function printed, at once: its item's id, attempt, queue, root, headers.
    wait_for(lambda: "%s 1 imports %s {}\n" % (rows.id, rows.id) in run.output(),
             what="the context printed")


# python.md's import_file, beside its send_email (`python3 -m` finds jobs
# in the pipeline's folder, where its exec actors start).
IMPORTS = """\
    imports
        external = true
actors
    import
        kind = exec
        command = "python3 -m zflow worker jobs:import_file"
        input = imports
        output = imported
"""
