"""CURVE from Python: a client and a worker with certificates get in;
one without gets no answer."""
import os
import subprocess

import pytest

import zflow
from conftest import ZFLOW, Broker
from test_client import TASKS

CONFIG = TASKS + """broker
    curve-secret = certs/broker_secret
    curve-clients = certs/allowed
"""


def test_curve_lets_in_who_has_a_certificate(tmp_path, processes):
    directory = str(tmp_path)
    certs = os.path.join(directory, "certs")
    for name in ("broker", "web"):
        subprocess.run([ZFLOW, "keygen", name, "--dir", certs], check=True,
                       stdout=subprocess.DEVNULL)
    os.makedirs(os.path.join(certs, "allowed"))
    with open(os.path.join(certs, "web")) as f, \
            open(os.path.join(certs, "allowed", "web"), "w") as g:
        g.write(f.read())
    broker = Broker(directory, CONFIG)
    secret, public = os.path.join(certs, "web_secret"), os.path.join(certs, "broker")
    try:
        os.environ["ZFLOW_CURVE_CERT"], os.environ["ZFLOW_CURVE_SERVER"] = secret, public
        processes.worker(broker, "workers:double")  # the environment, as zflow run sets it
        del os.environ["ZFLOW_CURVE_CERT"], os.environ["ZFLOW_CURVE_SERVER"]
        with zflow.Client(broker.endpoint, curve=(secret, public)) as client:
            assert client.put("tasks", 4).get(timeout=20) == 8
        with zflow.Client(broker.endpoint, timeout=1) as stranger:
            with pytest.raises(zflow.BrokerError):
                stranger.put("tasks", 1)
        with pytest.raises(ValueError):
            zflow.Client(broker.endpoint, curve=(public, public))  # no secret key there
    finally:
        os.environ.pop("ZFLOW_CURVE_CERT", None)
        os.environ.pop("ZFLOW_CURVE_SERVER", None)
        processes.stop_all()
        broker.stop()
