// The greeter of examples/greeter for a cluster. The greeter example's `example/greeter` also
// sends each greeting to the playground egress; this one only answers the request waiting for
// the greeting, so the cluster's module needs no egress (cluster mode runs the playground
// egress too: README, "A cluster on one machine"). `person` and the greetings are the example's.
import { address, message, statefulFunction, types } from "@eddy/sdk";
import { GreetRequestType, greeting, person } from "../greeter/functions.ts";

export { person };

export const greeter = statefulFunction({
  typename: "example/greeter",
  handle(ctx, msg) {
    const { name, visits = 1, replyTo } = msg.as(GreetRequestType);
    if (replyTo === undefined) return;
    ctx.send(message(address(replyTo.typename, replyTo.id), greeting(name, visits), types.string));
  },
});
