"""Serves functions.py over HTTP with the official StateFun Python SDK, for interop tests.

    python server.py [PORT [FUNCTIONS_DIR]]

Serves the `functions` of functions.py in FUNCTIONS_DIR (default: this directory). Binds
127.0.0.1:PORT (0 or absent: any free port) and prints the port on stdout as its
first line. Every POST body is a ToFunction, answered by RequestReplyHandler.handle_sync
with 200 application/octet-stream; an exception in the SDK or a function answers 500
with the error as text/plain. Stops when stdin closes (so it never outlives the test
that started it) or on SIGTERM.
"""

import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree

import os  # noqa: E402

if len(sys.argv) > 2:
    sys.path.insert(0, os.path.abspath(sys.argv[2]))

import threading  # noqa: E402
import traceback  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402

from functions import functions  # noqa: E402
from statefun import RequestReplyHandler  # noqa: E402

handler = RequestReplyHandler(functions)


class StatefunRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as StateFun's runtime uses it
    disable_nagle_algorithm = True  # headers and body go out in two writes; don't wait for an ACK between

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        try:
            reply = handler.handle_sync(body)
            status, content_type = 200, "application/octet-stream"
        except Exception as error:  # the SDK raises on unknown functions, type mismatches, ...
            reply = f"{type(error).__name__}: {error}".encode("utf-8")
            status, content_type = 500, "text/plain; charset=utf-8"
            traceback.print_exc(file=sys.stderr)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass  # one line per request is noise in test output; errors are printed above


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), StatefunRequestHandler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)

    def stop_when_stdin_closes():
        sys.stdin.buffer.read()
        server.shutdown()

    threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
