"""Derived ids are ZFP's (schemas/zfp.md §3): the vectors of
schemas/vectors/ids.txt, in C (libzflow, when found) and in Python."""
import os

from zflow import _zfp
from conftest import ROOT


def _output_vectors():
    with open(os.path.join(ROOT, "schemas", "vectors", "ids.txt")) as f:
        for line in f:
            fields = line.split()
            if fields and fields[0] == "output":
                parent, group = fields[1].split("/", 1)
                yield bytes.fromhex(parent), group, int(fields[2]), fields[3]


def test_output_ids_match_the_vectors():
    vectors = list(_output_vectors())
    assert len(vectors) == 3
    for parent, group, index, expected in vectors:
        assert _zfp._python_output_id(parent, group, index).hex() == expected
        assert _zfp.output_id(parent, group, index).hex() == expected


def test_each_group_derives_its_own_outputs():
    parent = bytes(range(16))
    assert _zfp.output_id(parent, "fetch", 0) != _zfp.output_id(parent, "audit", 0)
    assert _zfp.output_id(parent, "fetch", 0) == _zfp.output_id(parent, "fetch", 0)


def test_the_c_derivation_is_found_in_a_checkout():
    assert _zfp._c_output is not None  # build/libzflow.so, beside clients/
