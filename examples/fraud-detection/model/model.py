"""`fraud/model` with the official StateFun Python SDK (apache-flink-statefun on PyPI): scores
a transaction's features with a logistic regression of fixed weights and replies
`fraud/Score` to its caller, the transaction's `fraud/transaction-manager`.

    python model.py [PORT] [--until-stdin-closes]

PORT: the first argument, else the environment variable FRAUD_MODEL_PORT, else 8001 (the
TypeScript functions take `eddy serve`'s default, 8000); 0 = any free port. Prints the port
it listens on as its first line. With --until-stdin-closes it also stops when its standard
input closes, so a test that starts it cannot leave it behind.

The formula is the same as score() in ../model.ts; model.test.ts checks that they agree.
"""

import math
import os
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from statefun import Context, Message, RequestReplyHandler, StatefulFunctions, make_json_type, message_builder

FEATURE_VECTOR = make_json_type(typename="fraud/FeatureVector")
SCORE = make_json_type(typename="fraud/Score")

INTERCEPT = -4.0
WEIGHT_LOG_AMOUNT = 0.9  # per unit of ln(1 + amount / 100)
WEIGHT_ACCOUNT_FRAUD_COUNT = 1.2  # per confirmed fraud on the account in the fraud window
WEIGHT_MERCHANT_RISK = 3.0  # per unit of the merchant's risk (0..1)

DEFAULT_PORT = 8001
# The listen backlog. A runtime calls each fraud/model/<transaction id> on a connection of its
# own while that call is in flight (Eddy's pool: up to 1024 per endpoint), so a burst of
# transactions opens hundreds of connections at once. With socketserver's default of 5 the
# kernel drops the rest, and they connect only as SYN retransmits back off: seconds, then tens.
LISTEN_BACKLOG = 1024


def score(amount: float, account_fraud_count: float, merchant_risk: float) -> float:
    """The probability of fraud, 0..1: 1 / (1 + e^-logit)."""
    logit = (
        INTERCEPT
        + WEIGHT_LOG_AMOUNT * math.log1p(amount / 100)
        + WEIGHT_ACCOUNT_FRAUD_COUNT * account_fraud_count
        + WEIGHT_MERCHANT_RISK * merchant_risk
    )
    return 1 / (1 + math.exp(-logit))


functions = StatefulFunctions()


@functions.bind(typename="fraud/model")
def model(context: Context, message: Message):
    where = f"fraud/model/{context.address.id}"
    if not message.is_type(FEATURE_VECTOR):
        raise TypeError(f"{where}: expected fraud/FeatureVector, got {message.value_typename()}")
    caller = context.caller
    if caller is None:
        raise ValueError(f"{where}: a FeatureVector must come from a function to reply to, not an ingress")
    vector = message.as_type(FEATURE_VECTOR)
    probability = score(vector["amount"], vector["accountFraudCount"], vector["merchantRisk"])
    reply = {"transactionId": vector["transactionId"], "score": probability}
    context.send(message_builder(target_typename=caller.typename, target_id=caller.id, value=reply, value_type=SCORE))


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


class ModelServer(ThreadingHTTPServer):
    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True


def main():
    args = [arg for arg in sys.argv[1:] if arg != "--until-stdin-closes"]
    port = int(args[0]) if args else int(os.environ.get("FRAUD_MODEL_PORT", DEFAULT_PORT))
    server = ModelServer(("127.0.0.1", port), StatefunHandler)
    print(server.server_address[1], flush=True)
    if "--until-stdin-closes" in sys.argv[1:]:

        def stop_when_stdin_closes():
            sys.stdin.buffer.read()
            server.shutdown()

        threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
