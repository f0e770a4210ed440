#!/usr/bin/python3
"""A small HTTP origin for the fetcher's tests: the well-behaved answers and
the faults a real server or network shows, on 127.0.0.1.

    origin.py [PORT]      serve (PORT 0: any free one); prints the port, then serves

Paths:
    /small                 200, "hello"
    /large?n=N             200, N bytes of 'x'
    /json                  200, application/json
    /binary                200, application/octet-stream, bytes 0..255
    /gzip                  200, "compressed hello" gzip-encoded
    /status/N              answers status N with a short body
    /redirect?to=PATH      302 to PATH;  /loop: 302 to itself
    /once/STATUS/KEY       STATUS (429 with Retry-After: 1, or 503) the first
                           time KEY is asked, then 200 "recovered"
    /hang                  reads the request, never answers (30 s at most)
    /trickle?n=N&gap=S     200 with a Content-Length of N, one byte every S s
    /echo                  200, the method, headers and body it got, as JSON
    /connections           200, {"connections": accepted so far}
    /headers?n=N           200 with N headers "X-Many: I", I from 0 to N-1
Everything is HTTP/1.1 with keep-alive.
"""
import gzip
import json
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

lock = threading.Lock()
connections = 0
asked = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        global connections
        with lock:
            connections += 1
        super().setup()

    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type="text/plain; charset=utf-8", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        parts = url.path.strip("/").split("/")
        length = int(self.headers.get("Content-Length") or 0)
        sent = self.rfile.read(length) if length else b""
        if url.path == "/small":
            self.answer(200, b"hello")
        elif url.path == "/large":
            self.answer(200, b"x" * int(query.get("n", "100000")))
        elif url.path == "/json":
            self.answer(200, b'{"a": [1, 2], "b": "c"}', "application/json")
        elif url.path == "/binary":
            self.answer(200, bytes(range(256)), "application/octet-stream")
        elif url.path == "/gzip":
            self.answer(200, gzip.compress(b"compressed hello"), headers=[("Content-Encoding", "gzip")])
        elif parts[0] == "status" and len(parts) == 2:
            self.answer(int(parts[1]), b"status %s" % parts[1].encode())
        elif url.path == "/redirect":
            self.answer(302, b"", headers=[("Location", query.get("to", "/small"))])
        elif url.path == "/loop":
            self.answer(302, b"", headers=[("Location", "/loop")])
        elif parts[0] == "once" and len(parts) == 3:
            with lock:
                first = parts[2] not in asked
                asked[parts[2]] = True
            if first and parts[1] == "429":
                self.answer(429, b"slow down", headers=[("Retry-After", "1")])
            elif first:
                self.answer(int(parts[1]), b"try again")
            else:
                self.answer(200, b"recovered")
        elif url.path == "/headers":
            self.answer(200, b"many", headers=[("X-Many", str(i)) for i in range(int(query.get("n", "3")))])
        elif url.path == "/hang":
            time.sleep(30)
            self.close_connection = True
        elif url.path == "/trickle":
            n, gap = int(query.get("n", "5")), float(query.get("gap", "0.2"))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            for _ in range(n):
                self.wfile.write(b"t")
                self.wfile.flush()
                time.sleep(gap)
        elif url.path == "/echo":
            echo = {"method": self.command, "headers": dict(self.headers.items()),
                    "body": sent.decode("utf-8", "replace")}
            self.answer(200, json.dumps(echo).encode(), "application/json")
        elif url.path == "/connections":
            self.answer(200, json.dumps({"connections": connections}).encode(), "application/json")
        else:
            self.answer(404, b"not found")

    do_POST = do_GET
    do_PUT = do_GET
    do_HEAD = do_GET


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        pass  # clients that hang up mid-answer are part of the tests


if __name__ == "__main__":
    server = Server(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
