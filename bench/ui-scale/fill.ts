// bench/ui-scale's load generator, in its own process (forked by run.ts) so that it does not
// share the runtime's event loop: sends one message to each of `count` distinct addresses
// through the playground HTTP ingress, `concurrency` keep-alive connections in a closed loop
// (bench/http-load.ts), each message durable before its 200. A 503 (no room: the memory
// budget or a backlog is full) is sent again after a short wait. Reports progress and the
// result to the parent over IPC.
//
//   (forked) fill.ts <ingress URL> <json plan>
import { setTimeout as sleep } from "node:timers/promises";
import { HttpConnection } from "../http-load.ts";

export interface FillPlan {
  /** Each message goes to `${pathPrefix}${idOf(index)}` for index 0 … count-1. */
  readonly pathPrefix: string;
  readonly idPrefix: string;
  readonly idDigits: number;
  readonly count: number;
  /** Indices below this get `delayedBody`, the others `body`. */
  readonly delayedBelow: number;
  readonly body: string;
  readonly delayedBody: string;
  readonly concurrency: number;
}

export type FillReport =
  | { readonly kind: "progress"; readonly sent: number }
  | { readonly kind: "done"; readonly sent: number; readonly retried: number; readonly ms: number }
  | { readonly kind: "failed"; readonly message: string };

export function idOf(prefix: string, digits: number, index: number): string {
  return `${prefix}${String(index).padStart(digits, "0")}`;
}

async function fill(url: string, plan: FillPlan): Promise<FillReport> {
  let next = 0;
  let sent = 0;
  let retried = 0;
  const started = performance.now();
  const report = setInterval(() => process.send?.({ kind: "progress", sent } satisfies FillReport), 2000);
  const worker = async () => {
    const connection = new HttpConnection(url);
    try {
      for (let index = next++; index < plan.count; index = next++) {
        const request = {
          path: `${plan.pathPrefix}${idOf(plan.idPrefix, plan.idDigits, index)}`,
          headers: { "content-type": "text/plain" },
          body: index < plan.delayedBelow ? plan.delayedBody : plan.body,
        };
        for (;;) {
          const answer = await connection.send(request);
          if (answer.status === 200) break;
          if (answer.status !== 503) {
            throw new Error(`${request.path}: ${answer.status} ${answer.body.toString("utf8").slice(0, 200)}`);
          }
          retried++;
          await sleep(50);
        }
        sent++;
      }
    } finally {
      connection.close();
    }
  };
  try {
    await Promise.all(Array.from({ length: plan.concurrency }, worker));
  } finally {
    clearInterval(report);
  }
  return { kind: "done", sent, retried, ms: performance.now() - started };
}

if (process.send !== undefined && process.argv[2] !== undefined && process.argv[3] !== undefined) {
  const url = process.argv[2];
  const plan = JSON.parse(process.argv[3]) as FillPlan;
  fill(url, plan).then(
    (done) => process.send?.(done, () => process.exit(0)),
    (error: unknown) =>
      process.send?.({ kind: "failed", message: error instanceof Error ? error.message : String(error) }, () =>
        process.exit(1),
      ),
  );
}
