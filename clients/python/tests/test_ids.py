"""Derived ids are ZFP's (schemas/zfp.md §3): the vectors of
schemas/vectors/ids.txt, in C (libzflow, when found) and in Python."""
import os

from zflow import _zfp
from conftest import ROOT


def _child_vectors():
    with open(os.path.join(ROOT, "schemas", "vectors", "ids.txt")) as f:
        for line in f:
            fields = line.split()
            if fields and fields[0] == "child":
                yield bytes.fromhex(fields[1]), int(fields[2]), fields[3]


def test_child_ids_match_the_vectors():
    vectors = list(_child_vectors())
    assert vectors
    for parent, index, expected in vectors:
        assert _zfp._python_child_id(parent, index).hex() == expected
        assert _zfp.child_id(parent, index).hex() == expected


def test_the_c_derivation_is_found_in_a_checkout():
    assert _zfp._c_child is not None  # build/libzflow.so, beside clients/
