"""docs/python.md's whole example, run as it stands: its jobs module and
pipeline under `zflow run`, its script, and the output the page shows."""
import os
import re
import subprocess

from conftest import PYTHONPATH, ROOT, Run, free_port


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
