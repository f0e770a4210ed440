"""A task for pipelines/tasks.zpl: {"n": N} in, {"n": N, "square": N*N} out.

A processor program reads one item a line (its body as JSON) and answers
with its outputs, a line each, then an empty line; a line starting with
"!" fails the item instead (docs/processor.md).
"""
import json
import sys

for line in sys.stdin:
    task = json.loads(line)
    if isinstance(task, dict) and isinstance(task.get("n"), (int, float)):
        print(json.dumps({"n": task["n"], "square": task["n"] * task["n"]}))
    else:
        print('!a task is {"n": NUMBER}')
    print(flush=True)
