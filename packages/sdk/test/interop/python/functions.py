"""Functions written with the official StateFun Python SDK (apache-flink-statefun 3.3.0).

Each one mirrors, line for line, an Eddy function in functions.ts beside this file;
interop-official-python.test.ts sends the same request to both and compares the replies.
Keep the two files in step: a change to one side only makes the test fail, as it should.
"""

from datetime import timedelta

from statefun import (
    BoolType,
    DoubleType,
    FloatType,
    IntType,
    LongType,
    StatefulFunctions,
    StringType,
    ValueSpec,
    egress_message_builder,
    kafka_egress_message,
    kinesis_egress_message,
    make_json_type,
    message_builder,
)

PEER = "interop/peer"
JSON_TYPE = make_json_type("interop/Json")

functions = StatefulFunctions()


# Handshake: one state of each expiration kind. Counts its invocations in `plain`.
@functions.bind(
    "interop/handshake",
    specs=[
        ValueSpec(name="plain", type=IntType),
        ValueSpec(name="by_write", type=StringType, expire_after_write=timedelta(minutes=1)),
        ValueSpec(name="by_call", type=LongType, expire_after_call=timedelta(milliseconds=1500)),
    ],
)
def handshake(context, message):
    context.storage.plain = (context.storage.plain or 0) + 1


# State: MODIFY and DELETE, driven by string commands.
@functions.bind(
    "interop/state",
    specs=[
        ValueSpec(name="counter", type=IntType),
        ValueSpec(name="label", type=StringType),
        ValueSpec(name="flag", type=BoolType),
    ],
)
def state(context, message):
    command = message.as_string()
    storage = context.storage
    if command == "incr":
        storage.counter = (storage.counter or 0) + 1
    elif command.startswith("label:"):
        storage.label = command[len("label:"):]
    elif command == "del-label":
        del storage.label
    elif command == "del-counter":
        del storage.counter
    elif command == "toggle":
        storage.flag = not storage.flag
    elif command == "set-then-del":
        storage.label = "brief"
        del storage.label
    elif command == "del-then-set":
        del storage.label
        storage.label = "back"
    elif command == "read":
        # Reading alone changes nothing: no mutation is reported.
        _ = (storage.counter, storage.label, storage.flag)
    else:
        raise ValueError(f"unknown command {command!r}")


# Presence: tells "no value" from a present default value (0, "") for state and messages.
@functions.bind(
    "interop/presence",
    specs=[ValueSpec(name="s", type=StringType), ValueSpec(name="i", type=IntType)],
)
def presence(context, message):
    s = context.storage.s
    context.send(message_builder(PEER, "s-present", bool_value=s is not None))
    if s is not None:
        context.send(message_builder(PEER, "s-value", str_value=s))
    i = context.storage.i
    context.send(message_builder(PEER, "i-present", bool_value=i is not None))
    if i is not None:
        context.send(message_builder(PEER, "i-value", int_value=i))
    raw = message.raw_value()
    context.send(message_builder(PEER, "message-present", bool_value=raw is not None))
    if raw is not None and message.is_string():
        context.send(message_builder(PEER, "message-value", str_value=message.as_string()))
        context.storage.s = message.as_string()


# Types: every built-in type as state and as message. Adds the message to the state of
# its type (bool: replaces it) and sends the new state value on, with the same type.
@functions.bind(
    "interop/types",
    specs=[
        ValueSpec(name="i", type=IntType),
        ValueSpec(name="l", type=LongType),
        ValueSpec(name="f", type=FloatType),
        ValueSpec(name="d", type=DoubleType),
        ValueSpec(name="b", type=BoolType),
        ValueSpec(name="s", type=StringType),
    ],
)
async def all_types(context, message):
    storage = context.storage
    if message.is_int():
        storage.i = (storage.i or 0) + message.as_int()
        context.send(message_builder(PEER, "int", int_value=storage.i))
    elif message.is_long():
        storage.l = (storage.l or 0) + message.as_long()
        context.send(message_builder(PEER, "long", long_value=storage.l))
    elif message.is_float():
        storage.f = (storage.f or 0.0) + message.as_float()
        context.send(message_builder(PEER, "float", float_value=storage.f))
    elif message.is_double():
        storage.d = (storage.d or 0.0) + message.as_double()
        context.send(message_builder(PEER, "double", double_value=storage.d))
    elif message.is_bool():
        storage.b = message.as_bool()
        context.send(message_builder(PEER, "bool", bool_value=storage.b))
    elif message.is_string():
        storage.s = (storage.s or "") + message.as_string()
        context.send(message_builder(PEER, "string", str_value=storage.s))
    else:
        raise TypeError(f"unexpected message type {message.value_typename()}")


# Messaging: sends, replies, delayed messages, cancellation and egresses, by command.
@functions.bind("interop/messaging")
def messaging(context, message):
    command = message.as_string()
    me = context.address.id
    if command == "send":
        context.send(message_builder(PEER, me + "-int", int_value=-7))
        context.send(message_builder(PEER, me + "-long", long_value=-(2**40)))
        context.send(message_builder(PEER, me + "-float", float_value=0.5))
        context.send(message_builder(PEER, me + "-double", double_value=-1.25))
        context.send(message_builder(PEER, me + "-bool", bool_value=True))
        context.send(message_builder(PEER, me + "-string", str_value="hi ✓"))
        context.send(message_builder(PEER, me + "-empty", str_value=""))
        context.send(message_builder("interop/other", "o", value=["é"], value_type=JSON_TYPE))
    elif command == "reply":
        caller = context.caller
        if caller is None:
            context.send(message_builder(PEER, "no-caller", str_value="from an ingress"))
        else:
            context.send(message_builder(caller.typename, caller.id, str_value="hello " + caller.id))
    elif command == "delay":
        context.send_after(timedelta(milliseconds=1500), message_builder(PEER, "later", str_value="later"))
        context.send_after(timedelta(0), message_builder(PEER, "now", int_value=0))
    elif command == "delay-token":
        context.send_after(timedelta(seconds=2), message_builder(PEER, "later", str_value="maybe"), "tok-1")
    elif command == "cancel":
        context.cancel_delayed_message("tok-1")
    elif command == "kafka":
        context.send_egress(kafka_egress_message(typename="interop/kafka", topic="events", value="v", key="k"))
        context.send_egress(kafka_egress_message(typename="interop/kafka", topic="events", value=b"\x00\x01"))
        context.send_egress(kafka_egress_message(typename="interop/kafka", topic="events", value=258))
        context.send_egress(
            kafka_egress_message(typename="interop/kafka", topic="events", value=7, value_type=IntType, key="")
        )
    elif command == "kafka-int-overflow":
        context.send_egress(kafka_egress_message(typename="interop/kafka", topic="events", value=2**32 + 1))
    elif command == "kinesis":
        context.send_egress(
            kinesis_egress_message(
                typename="interop/kinesis", stream="s", value="v", partition_key="pk", explicit_hash_key="hk"
            )
        )
        context.send_egress(
            kinesis_egress_message(
                typename="interop/kinesis", stream="s", value=-3, value_type=LongType, partition_key="pk"
            )
        )
    elif command == "egress":
        context.send_egress(egress_message_builder("interop/egress", value="payload", value_type=StringType))
        context.send_egress(egress_message_builder("interop/egress", value=2**53 + 1, value_type=LongType))
        context.send_egress(egress_message_builder("interop/egress", value=False, value_type=BoolType))
    elif command == "json":
        context.send_egress(
            egress_message_builder("interop/egress", value={"a": 1, "b": [True, None, "é"]}, value_type=JSON_TYPE)
        )
    else:
        raise ValueError(f"unknown command {command!r}")
