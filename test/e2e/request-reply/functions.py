"""A greeter with the official StateFun Python SDK that answers HTTP requests: the
reply goes to the caller, which for a request that waits is the request's reply address."""

from statefun import Context, Message, StatefulFunctions, ValueSpec, IntType, StringType, message_builder

functions = StatefulFunctions()


@functions.bind(typename="py/greeter", specs=[ValueSpec(name="visits", type=IntType)])
def greeter(context: Context, message: Message):
    visits = (context.storage.visits or 0) + 1
    context.storage.visits = visits
    text = f"Welcome {context.address.id}!" if visits == 1 else f"Welcome back {context.address.id}!"
    caller = context.caller
    if caller is not None:
        context.send(message_builder(target_typename=caller.typename, target_id=caller.id, str_value=text))
