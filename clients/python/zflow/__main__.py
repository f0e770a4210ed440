"""python -m zflow worker MODULE:FUNCTION [--broker ENDPOINT] [--group NAME]
[--input Q] [--output Q] [--concurrency N] [--threads N] [--timeout D]
[--hard-timeout D] [--pipeline P]
python -m zflow coprocess MODULE:FUNCTION

worker runs FUNCTION (marked with @zflow.actor, or given its queues here)
as a worker until SIGTERM or SIGINT. Under `zflow run` (kind = exec) the
broker and the actor's name, queues and settings come from the environment
(ZFLOW_*). Started by hand, it joins the actor of the pipeline that reads
its input; --group names another group, which gets a copy of every item.
coprocess runs it as the program of a processor with `protocol = batch`
(zflow.coprocess)."""
import argparse
import importlib
import sys
from typing import Optional, Sequence

from ._session import BrokerError
from .worker import HookFailed, Worker


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zflow")
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser("worker", help="run a function as a worker")
    worker.add_argument("target", metavar="MODULE:FUNCTION")
    worker.add_argument("--broker", help="the broker's endpoint (default $ZFLOW_ENDPOINT)")
    worker.add_argument("--group", "--name", dest="group",
                        help="the consumer group (actor) to join; default: the actor of the "
                             "pipeline that reads the input")
    worker.add_argument("--input")
    worker.add_argument("--output")
    worker.add_argument("--concurrency", type=int, help="items an async function runs at once")
    worker.add_argument("--threads", type=int, help="threads a plain function runs on")
    worker.add_argument("--timeout", help="soft time limit of an item (\"30s\", \"5m\")")
    worker.add_argument("--hard-timeout", help="hard time limit: the process ends")
    worker.add_argument("--pipeline")
    coprocess = commands.add_parser("coprocess",
                                    help="run a function as a processor's program (batch)")
    coprocess.add_argument("target", metavar="MODULE:FUNCTION")
    args = parser.parse_args(argv)
    module_name, _, function_name = args.target.partition(":")
    if not function_name:
        parser.error("give MODULE:FUNCTION, e.g. tasks:double")
    sys.path.insert(0, ".")
    try:
        fn = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as e:
        print("python -m zflow: cannot load %s: %s" % (args.target, e), file=sys.stderr)
        return 2
    if args.command == "coprocess":
        from .coprocess import serve
        serve(fn)
        return 0
    # What the function prints reaches the log a line at a time, as on a
    # terminal, not when a pipe's buffer fills or the worker ends.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    try:
        Worker(fn, args.broker, None, args.input, args.output, args.concurrency,
               pipeline=args.pipeline, threads=args.threads, timeout=args.timeout,
               hard_timeout=args.hard_timeout, group=args.group).run()
    except (ValueError, BrokerError) as e:
        print("python -m zflow worker: %s" % e, file=sys.stderr)
        return 2
    except HookFailed as e:  # its traceback is in the log already
        print("python -m zflow worker: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
