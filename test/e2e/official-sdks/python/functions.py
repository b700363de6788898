"""Functions written with the official StateFun Python SDK for the official-SDK end-to-end
tests, served by packages/sdk/test/interop/python/server.py: the same greeter and counter as
the Go, Java and JS SDK twins beside this folder."""

from statefun import Context, IntType, Message, StatefulFunctions, ValueSpec, message_builder

functions = StatefulFunctions()


@functions.bind(typename="py/greeter", specs=[ValueSpec(name="visits", type=IntType)])
def greeter(context: Context, message: Message):
    """Replies to its caller "Welcome <id>!" on the first visit, "Welcome back <id>!" after."""
    visits = (context.storage.visits or 0) + 1
    context.storage.visits = visits
    text = f"Welcome {context.address.id}!" if visits == 1 else f"Welcome back {context.address.id}!"
    caller = context.caller
    if caller is not None:
        context.send(message_builder(target_typename=caller.typename, target_id=caller.id, str_value=text))


@functions.bind(typename="py/counter", specs=[ValueSpec(name="count", type=IntType)])
def counter(context: Context, message: Message):
    """Counts its messages and replies the new count to its caller, as an int."""
    count = (context.storage.count or 0) + 1
    context.storage.count = count
    caller = context.caller
    if caller is not None:
        context.send(message_builder(target_typename=caller.typename, target_id=caller.id, int_value=count))
