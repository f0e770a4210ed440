"""The package's public API carries type hints that this Python can
resolve, and the py.typed marker that has a type checker read them."""
import inspect
import os
import tomllib
import typing

import zflow
from zflow._session import Session
from zflow.client import Tap
from zflow.coprocess import serve

# What zflow exports, what Client.tap returns, the session workers and
# clients share, and the function behind `python -m zflow coprocess`.
PUBLIC = [getattr(zflow, name) for name in zflow.__all__] + [Session, Tap, serve]
DUNDERS = {"__init__", "__enter__", "__exit__", "__aenter__", "__aexit__", "__iter__",
           "__next__", "__repr__"}


def functions():
    """(name, function) of each public function, and of each method a
    public class defines itself (properties and class methods too)."""
    for thing in PUBLIC:
        if not inspect.isclass(thing):
            yield thing.__name__, thing
            continue
        for name, member in vars(thing).items():
            if name.startswith("_") and name not in DUNDERS:
                continue
            if isinstance(member, property):
                member = member.fget
            elif isinstance(member, (classmethod, staticmethod)):
                member = member.__func__
            if inspect.isfunction(member):
                yield "%s.%s" % (thing.__name__, name), member


def test_every_public_function_and_method_has_its_hints():
    found, missing = [], []
    for name, function in functions():
        found.append(name)
        hints = typing.get_type_hints(function)  # raises if one does not resolve here
        parameters = list(inspect.signature(function).parameters)
        if parameters and parameters[0] in ("self", "cls"):
            parameters = parameters[1:]
        missing += ["%s: %s" % (name, p) for p in parameters + ["return"] if p not in hints]
    assert missing == []
    # The survey saw what it must: the calls docs/python.md documents.
    assert {"Client.put", "Client.put_many", "Client.group", "Client.status", "Client.result",
            "Client.cancel", "Client.tap", "Handle.get", "Result.over", "AsyncClient.connect",
            "AsyncClient.result", "AsyncHandle.get", "Context.progress", "Context.retry",
            "Worker.run", "Tap.__next__", "Session.receive", "actor", "current", "on_start",
            "on_stop", "serve"} <= set(found)


def test_the_package_says_it_is_typed():
    package = os.path.dirname(zflow.__file__)
    assert os.path.isfile(os.path.join(package, "py.typed"))
    with open(os.path.join(os.path.dirname(package), "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["zflow"]
