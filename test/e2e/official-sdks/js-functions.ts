// Functions written with the official StateFun JS SDK (npm apache-flink-statefun 3.3.0) for
// the official-SDK end-to-end tests, served in this process by the SDK's own node:http
// handler: the same greeter and counter as the Go, Java and Python twins beside this file.
import { createServer } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";

interface JsSdkContext {
  self: { id: string };
  caller: { typename: string; id: string } | undefined;
  storage: { visits: number | null; count: number | null };
  send(message: unknown): void;
}

const require = createRequire(import.meta.url);
const { StateFun, messageBuilder } = require("apache-flink-statefun");

function replyToCaller(context: JsSdkContext, value: unknown, valueType: unknown): void {
  if (context.caller === undefined) return;
  context.send(messageBuilder({ typename: context.caller.typename, id: context.caller.id, value, valueType }));
}

/** Serves js/greeter and js/counter on a free port of 127.0.0.1. */
export async function serveJsSdkFunctions(): Promise<{ url: string; close(): void }> {
  const statefun = new StateFun();
  statefun.bind({
    typename: "js/greeter",
    specs: [{ name: "visits", type: StateFun.intType() }],
    fn(context: JsSdkContext) {
      const visits = (context.storage.visits ?? 0) + 1;
      context.storage.visits = visits;
      const id = context.self.id;
      replyToCaller(context, visits === 1 ? `Welcome ${id}!` : `Welcome back ${id}!`, StateFun.stringType());
    },
  });
  statefun.bind({
    typename: "js/counter",
    specs: [{ name: "count", type: StateFun.intType() }],
    fn(context: JsSdkContext) {
      const count = (context.storage.count ?? 0) + 1;
      context.storage.count = count;
      replyToCaller(context, count, StateFun.intType());
    },
  });
  const server = createServer(statefun.handler());
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}
