"""The greeter with the official StateFun Python SDK (apache-flink-statefun on PyPI): the
same functions as ../functions.ts, served over HTTP for examples/greeter/module.yaml.

    python greeter.py [PORT]      # default 8000, as module.yaml expects; 0 = any free port

`example/person` counts a person's visits and asks `example/greeter` for a greeting; the
greeting goes to the playground egress topic "greetings" and, when the HTTP request waits
for a reply (Prefer: wait=<s>), to the request's reply address, which the person passes
along as `replyTo`. Prints the port it listens on as its first line.
"""

import sys
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from statefun import (
    Context,
    IntType,
    Message,
    RequestReplyHandler,
    StatefulFunctions,
    StringType,
    ValueSpec,
    egress_message_builder,
    make_json_type,
    message_builder,
)

GREET_REQUEST = make_json_type(typename="example/GreetRequest")
EGRESS_RECORD = make_json_type(typename="io.statefun.playground/EgressRecord")

functions = StatefulFunctions()


@functions.bind(typename="example/person", specs=[ValueSpec(name="visits", type=IntType)])
def person(context: Context, message: Message):
    request = message.as_type(GREET_REQUEST)
    visits = (context.storage.visits or 0) + 1
    context.storage.visits = visits
    forward = {"name": request["name"], "visits": visits}
    if context.caller is not None:
        forward["replyTo"] = {"typename": context.caller.typename, "id": context.caller.id}
    context.send(
        message_builder(target_typename="example/greeter", target_id=request["name"], value=forward, value_type=GREET_REQUEST)
    )


def greeting(name: str, visits: int) -> str:
    if visits == 1:
        return f"Welcome {name}!"
    if visits == 2:
        return f"Welcome back {name}!"
    if visits == 3:
        return f"third time's the charm, {name}!"
    return f"Happy to see you once again, {name}! (visit {visits})"


@functions.bind(typename="example/greeter")
def greeter(context: Context, message: Message):
    request = message.as_type(GREET_REQUEST)
    text = greeting(request["name"], request.get("visits", 1))
    record = {"topic": "greetings", "payload": text}
    context.send_egress(
        egress_message_builder(target_typename="io.statefun.playground/egress", value=record, value_type=EGRESS_RECORD)
    )
    reply_to = request.get("replyTo")
    if reply_to is not None:
        context.send(message_builder(target_typename=reply_to["typename"], target_id=reply_to["id"], str_value=text))


handler = RequestReplyHandler(functions)


class StatefunHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the runtime uses it
    disable_nagle_algorithm = True

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            reply, status, content_type = handler.handle_sync(body), 200, "application/octet-stream"
        except Exception as error:  # the SDK raises on unknown functions, type mismatches, ...
            traceback.print_exc(file=sys.stderr)
            reply, status, content_type = f"{type(error).__name__}: {error}".encode(), 500, "text/plain; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


class GreeterServer(ThreadingHTTPServer):
    # Eddy opens up to 1024 connections per endpoint under load; socketserver's default
    # listen backlog of 5 would leave the rest to SYN retransmits (seconds, then tens).
    request_queue_size = 1024
    daemon_threads = True


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    server = GreeterServer(("127.0.0.1", port), StatefunHandler)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
