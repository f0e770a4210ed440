"""A Python function as a processor's program in batch mode: zflow's C
processor speaks ZFP, the function gets lines of envelopes."""
import os
import sys

import zflow
from conftest import Broker

BATCH = """pipeline
    results = parsed
queues
    lines
        external = true
        max-attempts = 2
        retry-base = 10ms
        retry-max = 10ms
actors
    parse
        kind = processor
        command = "%s"
        protocol = batch
        batch = 16
        concurrency = 2
        input = lines
        output = parsed
"""


def _broker(tmp_path, processes, command):
    broker = Broker(str(tmp_path), BATCH % command)
    processes.actor(broker, "parse")
    return broker


def test_batches_of_items_through_a_python_function(tmp_path, processes):
    here = os.path.dirname(os.path.abspath(__file__))
    command = "env PYTHONPATH=%s:%s %s -m zflow coprocess workers:parse" % (
        os.path.dirname(here), here, sys.executable)
    broker = _broker(tmp_path, processes, command)
    try:
        with zflow.Client(broker.endpoint) as client:
            items = [{"n": n, "text": "x" * n, "fail": n % 50 == 7} for n in range(500)]
            handles = client.put_many("lines", items)
            for n, handle in enumerate(handles):
                result = handle.result(timeout=20)
                if n % 50 == 7:
                    assert result.state == "dead", result
                    assert result.error == "ValueError: bad item %d" % n
                else:
                    assert (result.state, result.values) == ("done", [{"n": n, "size": n}])
    finally:
        processes.stop_all()
        broker.stop()


def test_an_answer_of_the_wrong_shape_fails_the_line_saying_why(tmp_path, processes):
    with open(os.path.join(str(tmp_path), "bad.py"), "w") as f:
        f.write("import sys\nfor line in sys.stdin:\n    print('[]', flush=True)\n")
    broker = _broker(tmp_path, processes, sys.executable + " bad.py")
    try:
        with zflow.Client(broker.endpoint) as client:
            result = client.put("lines", {"n": 1}).result(timeout=20)
            assert result.state == "dead"
            assert result.error == ("its answer is not an array of 1 entries, "
                                    "one for each item of the line")
    finally:
        processes.stop_all()
        broker.stop()


def test_an_async_function_runs_ten_thousand_items(tmp_path, processes):
    here = os.path.dirname(os.path.abspath(__file__))
    command = "env PYTHONPATH=%s:%s %s -m zflow coprocess workers:parse_async" % (
        os.path.dirname(here), here, sys.executable)
    broker = _broker(tmp_path, processes, command)
    try:
        with zflow.Client(broker.endpoint) as client:
            items = [{"n": n, "text": "x" * (n % 100), "fail": n % 1000 == 7,
                      "exit": n % 1000 == 8} for n in range(10000)]
            handles = client.put_many("lines", items)
            failed = {}
            for n, handle in enumerate(handles):
                result = handle.result(timeout=60)
                if n % 1000 in (7, 8):
                    assert result.state == "dead", result
                    failed[n] = result.error
                else:
                    assert (result.state, result.values) == \
                        ("done", [{"n": n, "size": n % 100}]), result
            assert failed[7] == "ValueError: bad item 7"
            assert failed[8] == "the function called sys.exit(3)"
            assert len(failed) == 20
    finally:
        processes.stop_all()
        broker.stop()
