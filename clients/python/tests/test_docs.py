"""The docs' examples, run as they stand: docs/python.md's jobs module and
pipeline under `zflow run`, its script, and the output the page shows;
its asyncio example, whole; and README.md's tour."""
import builtins
import os
import re
import subprocess
import symtable

from conftest import PYTHONPATH, ROOT, ZFLOW, Run, free_port


def blocks():
    """The page's code blocks that begin with a `# NAME` line, by NAME."""
    with open(os.path.join(ROOT, "docs", "python.md")) as f:
        page = f.read()
    found = {}
    for body in re.findall(r"```[a-z]*\n(.*?)```", page, re.S):
        first, _, rest = body.partition("\n")
        if first.startswith("# "):
            found[first[2:].split(":")[0].strip()] = rest if first == "# output" else body
    return found


def test_the_whole_example_of_the_python_page(tmp_path):
    found = blocks()
    assert {"jobs.py", "jobs.zpl", "app.py", "output"} <= set(found)
    broker, metrics = free_port(), free_port()

    events = free_port()

    def ported(text):
        """text on free ports: the broker's, its metrics', and its events'
        (by default the port after the broker's, perhaps taken here)."""
        text = text.replace("    endpoint = tcp://127.0.0.1:5670\n",
                            "    endpoint = tcp://127.0.0.1:5670\n"
                            "    events = tcp://127.0.0.1:%d\n" % events)
        return text.replace("127.0.0.1:5670", "127.0.0.1:%d" % broker) \
                   .replace("127.0.0.1:9100", "127.0.0.1:%d" % metrics)
    for name in ("jobs.py", "app.py"):
        with open(os.path.join(str(tmp_path), name), "w") as f:
            f.write(ported(found[name]))
    run = Run(str(tmp_path), ported(found["jobs.zpl"]),
              endpoint="tcp://127.0.0.1:%d" % broker)
    try:
        run.client().close()  # the broker answers
        app = subprocess.run(["/usr/bin/python3", "app.py"], cwd=str(tmp_path), timeout=120,
                             capture_output=True, text=True,
                             env=dict(os.environ, PYTHONPATH=PYTHONPATH))
        assert app.returncode == 0, app.stderr + run.log()
        assert app.stdout == found["output"], run.log()
    finally:
        run.stop()


def test_the_readme_tour(tmp_path):
    """README.md's tour, run as a user types it: a task put, its result,
    the figures and the live view, then the run stopped."""
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    tour = [b for b in re.findall(r"```sh\n(.*?)```", readme, re.S) if b.startswith("# tour\n")]
    assert len(tour) == 1, "README.md has one block that starts with '# tour'"
    broker, events = free_port(), free_port()
    script = tour[0].replace("build/zflow", ZFLOW) \
                    .replace("tcp://127.0.0.1:5670", "tcp://127.0.0.1:%d" % broker) \
                    .replace("tcp://127.0.0.1:5671", "tcp://127.0.0.1:%d" % events)
    script += "wait\n"  # for the run to stop
    env = dict(os.environ, ZFLOW_ENDPOINT="tcp://127.0.0.1:%d" % broker,
               ZFLOW_EVENTS="tcp://127.0.0.1:%d" % events,
               XDG_STATE_HOME=str(tmp_path),
               PATH="/usr/bin:" + os.environ.get("PATH", ""))
    tour_run = subprocess.Popen(["bash", "-c", script], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    try:
        out, err = tour_run.communicate(timeout=120)
    finally:
        if tour_run.poll() is None:
            os.killpg(tour_run.pid, 9)
            tour_run.wait()
    assert tour_run.returncode == 0, err
    assert re.search(r'\{"id":"[0-9a-f]{32}","state":"done","results":\[\{"n":7,"square":49\}\]\}',
                     out), out + err
    assert re.search(r"^tasks +0 +0 +1 +1 ", out, re.M), out  # status: put 1, acked 1
    assert re.search(r"^square +2 +1 ", out, re.M), out  # top: the actor's 2 workers
    assert "zflow run: stopped after" in err, err


def undefined(code):
    """The names code uses that it neither defines nor imports, and that
    are not builtins."""
    top = symtable.symtable(code, "<example>", "exec")
    defined = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}
    missing = set()

    def walk(table):
        for symbol in table.get_symbols():
            name = symbol.get_name()
            own = table is not top and (symbol.is_local() or symbol.is_parameter() or
                                        symbol.is_free())
            if symbol.is_referenced() and not own and name not in defined and \
                    not hasattr(builtins, name):
                missing.add(name)
        for child in table.get_children():
            walk(child)
    walk(top)
    return missing


def test_the_asyncio_example_of_the_patterns_defines_every_name_it_uses():
    once = "pages = await asyncio.gather(*(fetch(session, url) for url in urls))\nsummary(pages)\n"
    assert undefined(once) == {"asyncio", "fetch", "session", "summary", "urls"}
    assert undefined(blocks()["gather.py"]) == set()


# What completes a page's section shown alone (a broker's settings) into
# a pipeline: one actor and the queue it reads.
FRAGMENT = """\
queues
    fragment
        external = true
actors
    fragment
        kind = sink
        input = fragment
        target = null
"""


def test_every_pipeline_the_docs_show_is_valid(tmp_path):
    """Each pipeline file a page shows (a code block with an actors
    section, or a section shown alone, completed by one actor) passes zflow
    validate as it stands, given the files it names (made empty here: a
    source, a plugin, a certificate)."""
    pages = sorted(os.path.join(ROOT, "docs", name)
                   for name in os.listdir(os.path.join(ROOT, "docs")) if name.endswith(".md"))
    checked = 0
    for page in pages + [os.path.join(ROOT, "README.md")]:
        with open(page) as f:
            text = f.read()
        for number, body in enumerate(re.findall(r"```[a-z]*\n(.*?)```", text, re.S)):
            if not re.search(r"^actors\s*$", body, re.M):
                if not re.match(r"(broker|queues|pipeline)\s*(#.*)?\n", body):
                    continue
                body += FRAGMENT  # a section alone: completed by an actor
            folder = os.path.join(str(tmp_path), "%s-%d" % (os.path.basename(page), number))
            os.makedirs(folder)
            path = os.path.join(folder, "p.zpl")
            with open(path, "w") as f:
                f.write(body)
            for _ in range(10):  # each round makes the files the last one missed
                check = subprocess.run([ZFLOW, "validate", path], capture_output=True, text=True,
                                       timeout=30)
                missing = re.findall(r"does not exist \(looked for ([^)]+)\)", check.stderr)
                if check.returncode == 0 or not missing:
                    break
                for name in missing:
                    os.makedirs(os.path.dirname(name), exist_ok=True)
                    open(name, "w").close()
            assert check.returncode == 0, "%s, block %d:\n%s\n%s" % (page, number, body,
                                                                    check.stderr)
            checked += 1
    assert checked >= 12, checked


def test_every_command_the_docs_show_is_one_zflow_reads():
    """Each `zflow CMD ...` a page shows (in a code block, or in a span of
    code) names a command zflow has, and only options that command takes:
    a renamed option is caught in every page that still spells it the old
    way."""
    helps = {}

    def help_of(command):
        if command not in helps:
            shown = subprocess.run([ZFLOW, command, "--help"], capture_output=True, text=True,
                                   timeout=30)
            helps[command] = shown.stdout if shown.returncode == 0 else None
        return helps[command]

    pages = [os.path.join(ROOT, "docs", name)
             for name in sorted(os.listdir(os.path.join(ROOT, "docs")))
             if name.endswith(".md") and name != "commands.md"]  # that one is zflow's own
    pages += [os.path.join(ROOT, name) for name in ("README.md", "CONTRIBUTING.md")]
    wrong, checked = [], 0
    for page in pages:
        with open(page) as f:
            text = f.read()
        lines = [line for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
                 for line in block.splitlines()]
        lines += re.findall(r"`([^`\n]*zflow [^`\n]*)`", text)
        for line in lines:
            m = re.match(r"^\s*(?:\$ )?(?:[A-Z_]+=\S+ )*(?:\./)?(?:build/)?zflow ([a-z]+)"
                         r"((?: [^#|&;]*)?)", line)
            if not m:
                continue
            shown = help_of(m.group(1))
            if shown is None:
                wrong.append("%s: %s: no command %s" % (page, line.strip(), m.group(1)))
                continue
            for option in re.findall(r"(?<![\w-])--([a-z][a-z-]*)", m.group(2)):
                if "--%s" % option not in shown:
                    wrong.append("%s: %s: zflow %s takes no --%s"
                                 % (page, line.strip(), m.group(1), option))
            checked += 1
    assert not wrong, "\n".join(wrong)
    assert checked >= 100, checked
