// Restate's copy of the greeter: a virtual object keyed like Eddy's addresses, keeping the
// visit count in its state. Served by the Restate TypeScript SDK on the port given.
//
//   node bench/greeter/restate-service.ts <port>
import * as restate from "@restatedev/restate-sdk";
import { greeting } from "./functions.ts";

const greeter = restate.object({
  name: "greeter",
  handlers: {
    greet: async (ctx: restate.ObjectContext, name: string): Promise<string> => {
      const visits = ((await ctx.get<number>("visits")) ?? 0) + 1;
      ctx.set("visits", visits);
      return greeting(name, visits);
    },
  },
});

const port = Number(process.argv[2] ?? 9080);
await restate.serve({ services: [greeter], port });
process.stdout.write(`listening ${port}\n`);
