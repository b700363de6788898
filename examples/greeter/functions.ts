// The greeter, StateFun's hello world: `example/person` counts a person's visits and asks
// `example/greeter` for a greeting, which goes to the playground egress topic "greetings".
// When the HTTP request waits for a reply (`Prefer: wait=<s>`), its caller is a reply
// address; the person passes it along and the greeter answers it with the greeting.
import { address, egressMessage, message, statefulFunction, types } from "@eddy/sdk";

export interface GreetRequest {
  name: string;
  visits?: number;
  /** Who should also get the greeting: the address of a request waiting for it ("namespace/type/id"). */
  replyTo?: { typename: string; id: string };
}

export const GreetRequestType = types.json<GreetRequest>("example/GreetRequest");

/** The StateFun playground egress record: `GET /greetings` on the playground egress returns `payload`. */
export const EgressRecordType = types.json<{ topic: string; payload: string }>("io.statefun.playground/EgressRecord");

export const person = statefulFunction({
  typename: "example/person",
  state: { visits: types.int },
  handle(ctx, msg) {
    const request = msg.as(GreetRequestType);
    const visits = (ctx.storage.visits ?? 0) + 1;
    ctx.storage.visits = visits;
    const caller = ctx.caller;
    const forward: GreetRequest = { name: request.name, visits };
    if (caller !== undefined) forward.replyTo = { typename: caller.typename, id: caller.id };
    ctx.send(message(address("example/greeter", request.name), forward, GreetRequestType));
  },
});

export function greeting(name: string, visits: number): string {
  switch (visits) {
    case 1:
      return `Welcome ${name}!`;
    case 2:
      return `Welcome back ${name}!`;
    case 3:
      return `third time's the charm, ${name}!`;
    default:
      return `Happy to see you once again, ${name}! (visit ${visits})`;
  }
}

export const greeter = statefulFunction({
  typename: "example/greeter",
  handle(ctx, msg) {
    const { name, visits = 1, replyTo } = msg.as(GreetRequestType);
    const text = greeting(name, visits);
    ctx.send(egressMessage("io.statefun.playground/egress", { topic: "greetings", payload: text }, EgressRecordType));
    if (replyTo !== undefined) ctx.send(message(address(replyTo.typename, replyTo.id), text, types.string));
  },
});
