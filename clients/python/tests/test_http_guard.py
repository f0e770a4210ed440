"""Who may use the HTTP door, and how many at once: the API needs a token
beyond loopback and beside CURVE, HTTPS when given a certificate, and no
one client address can take every connection."""
import os
import resource
import socket
import ssl
import subprocess
import time
import urllib.request

from conftest import GATED, ZFLOW, free_port, http, wait_for

TOKEN = "c2b7e0f4d1a94e6b8f3c5a7d9e1f2b4c"


def healthy(address, tls=None):
    """True once the gateway answers /health with 200."""
    try:
        scheme = "https" if tls else "http"
        return urllib.request.urlopen("%s://%s/health" % (scheme, address), timeout=5,
                                      context=tls).status == 200
    except (OSError, ConnectionError):
        return False


def refused_start(runs, tmp_path, broker, *args):
    """The exit status and log of a run that should refuse to start."""
    run = runs(tmp_path, GATED, "--no-journal", *args, broker=broker)
    run.process.wait(timeout=30)
    return run.process.returncode, run.log()


def test_an_open_api_needs_a_token_or_insecure(tmp_path, runs):
    port = free_port()
    open_api = "    metrics = 0.0.0.0:%d\n    api = true\n" % port
    status, log = refused_start(runs, tmp_path / "open", open_api)
    assert status != 0 and "open to other machines without a token" in log, log
    assert "api-token-file" in log and "--insecure" in log, log

    # With CURVE, even on loopback: a token too.
    certs = tmp_path / "curve" / "certs"
    subprocess.run([ZFLOW, "keygen", "broker", "--dir", str(certs)], check=True,
                   stdout=subprocess.DEVNULL)
    os.makedirs(str(certs / "allowed"))
    status, log = refused_start(
        runs, tmp_path / "curve",
        "    metrics = 127.0.0.1:%d\n    api = true\n    curve-secret = certs/broker_secret\n"
        "    curve-clients = certs/allowed\n" % free_port())
    assert status != 0 and "has CURVE, so its HTTP API needs a token" in log, log

    # A token too short to be one, or a file that is not there.
    (tmp_path / "short").mkdir()
    (tmp_path / "short" / "token").write_text("secret\n")
    status, log = refused_start(runs, tmp_path / "short",
                                open_api + "    api-token-file = token\n")
    assert status != 0 and "the token is 6 characters; give at least 16" in log, log
    status, log = refused_start(runs, tmp_path / "missing",
                                open_api + "    api-token-file = nosuch\n")
    assert status != 0 and "api-token-file: cannot read" in log and "nosuch" in log, log

    # --insecure runs it open, and says so.
    run = runs(tmp_path / "insecure", GATED, "--no-journal", "--insecure", broker=open_api)
    address = "127.0.0.1:%d" % port
    wait_for(lambda: healthy(address), what="the gateway")
    assert http(address, "POST", "/queues/poison", b"1")[0] == 200
    assert "open to other machines without a token (--insecure)" in run.log()
    assert run.stop() == 0


def test_the_api_answers_only_the_bearer_of_its_token(tmp_path, runs):
    port = free_port()
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    run = runs(tmp_path, GATED, "--no-journal",
               broker="    metrics = 0.0.0.0:%d\n    api = true\n    api-token-file = token\n"
               % port)
    address = "127.0.0.1:%d" % port
    wait_for(lambda: healthy(address), what="the gateway")
    bearer = {"Authorization": "Bearer " + TOKEN}
    for headers in ({}, {"Authorization": "Bearer " + TOKEN[:-1]},
                    {"Authorization": "Bearer " + TOKEN + "x"},
                    {"Authorization": "Basic " + TOKEN}):
        for method, path, body in (("POST", "/queues/poison", b"1"), ("GET", "/queues", None),
                                   ("GET", "/results/%s" % ("1" * 32), None),
                                   ("DELETE", "/messages/%s" % ("1" * 32), None),
                                   ("GET", "/events?topic=data.poison", None)):
            status, answer_headers, answer = http(address, method, path, body, headers)
            assert status == 401 and "Bearer TOKEN" in answer["error"], (method, path, answer)
            assert answer_headers["WWW-Authenticate"].startswith("Bearer"), dict(answer_headers)
    # Nothing was put by those: the queue's figures say so.
    status, _, queues = http(address, "GET", "/queues", headers=bearer)
    assert status == 200 and {q["name"]: q["put"] for q in queues}["poison"] == 0, queues
    status, _, put = http(address, "POST", "/queues/poison", b"7", bearer)
    assert status == 200, put
    status, _, result = http(address, "GET", "/results/%s?wait=20s" % put["id"], None, bearer)
    assert (result["state"], result["results"]) == ("done", [7]), result
    # /health and /metrics are figures, not data: no token needed.
    assert healthy(address)
    assert b"zflow_" in urllib.request.urlopen("http://%s/metrics" % address, timeout=5).read()
    assert run.stop() == 0


def test_https_with_a_certificate(tmp_path, runs):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = "127.0.0.1:%d" % free_port()
    run = runs(tmp_path, GATED, "--no-journal",
               broker="    metrics = %s\n    api = true\n    https-cert = cert.pem\n"
               "    https-key = key.pem\n" % address)
    tls = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    wait_for(lambda: healthy(address, tls), what="the gateway over HTTPS")
    status, _, put = http(address, "POST", "/queues/poison", b"[1, 2]", tls=tls)
    assert status == 200, put
    status, _, result = http(address, "GET", "/results/%s?wait=20s" % put["id"], tls=tls)
    assert result["results"] == [[1, 2]], result
    # Plain HTTP gets no answer from it.
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(2)
        try:
            assert not sock.recv(4096).startswith(b"HTTP/1.1 200")
        except (ConnectionResetError, socket.timeout):
            pass  # closed, or waiting for a TLS hello that never comes
    # A certificate without its key is refused at start.
    status, log = refused_start(runs, tmp_path / "half",
                                "    metrics = :%d\n    https-cert = ../cert.pem\n" % free_port())
    assert status != 0 and "https-cert and https-key go together" in log, log
    assert run.stop() == 0


def test_slow_clients_cannot_take_every_connection(tmp_path, runs):
    """1,100 connections that send a header a byte at a time, all from one
    address: at most http-max-per-address of them are kept; /health and
    the API answer others, and new ZeroMQ sessions get in."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1400:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    address = "127.0.0.1:%d" % free_port()
    run = runs(tmp_path, GATED, "--no-journal",
               broker="    metrics = %s\n    api = true\n" % address)
    wait_for(lambda: healthy(address), what="the gateway")
    host, port = address.split(":")
    slow, closed = [], set()
    try:
        for n in range(1100):
            sock = socket.socket()
            sock.bind(("127.0.0.2", 0))
            sock.connect((host, int(port)))
            sock.sendall(b"GET /health HTTP/1.1\r\nX-Slow: ")
            slow.append(sock)
        # Another byte on each, as a slow-loris client does: the server
        # closed those over the limit.
        time.sleep(0.5)
        for n, sock in enumerate(slow):
            try:
                sock.sendall(b"a")
            except OSError:
                closed.add(n)
        time.sleep(0.5)
        for n, sock in enumerate(slow):
            sock.setblocking(False)
            try:
                if sock.recv(1) == b"":
                    closed.add(n)
            except BlockingIOError:
                pass  # kept open, waiting for the rest of its header
            except OSError:
                closed.add(n)
        kept = 1100 - len(closed)
        assert 0 < kept <= 64, kept
        started = time.monotonic()
        assert healthy(address)
        print("/health beside %d slow connections: %.1f ms"
              % (kept, (time.monotonic() - started) * 1000))
        status, _, put = http(address, "POST", "/queues/poison", b"5")
        assert status == 200, put
        # A new ZeroMQ session: a client connects and reads the result.
        with run.client() as client:
            assert client.put("poison", 6).get(timeout=20) == 6
    finally:
        for sock in slow:
            sock.close()
    assert run.stop() == 0
