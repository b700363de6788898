// The HTTP load of bench/cluster, all through Eddy's playground ingress with the lean client
// of bench/http-load.ts (one keep-alive connection per client and target): a closed loop for
// throughput, a paced open loop for latency well under capacity, a readiness probe, and the
// failover probe that asks instances of a killed worker through the others until each answers.
// Every loop is bounded in time and ends by itself.
import { setTimeout as sleep } from "node:timers/promises";
import { HttpConnection, type LoadRequest } from "../http-load.ts";

/** One request's answer must come within this (a forwarded request: its wait plus the forwarder's slack). */
const REQUEST_TIMEOUT_MS = 30_000;
/** After a refused or failed request a client pauses this long, so a rebalance is no busy loop. */
const ERROR_PAUSE_MS = 20;

export interface Target {
  /** The ingress to send to: "http://127.0.0.1:<port>". */
  readonly url: string;
  readonly request: LoadRequest;
}

export interface LoopResult {
  /** Requests answered 200 within the measured window (sent in it, answered in it). */
  readonly completed: number;
  /** Answered 200 at any time, warm-up included (what the runtime took). */
  readonly acceptedTotal: number;
  /** Requests not answered 200 (any time), and the first such answer. */
  readonly errors: number;
  readonly firstError: string | undefined;
  /** Latency of each request of `completed`, in ms. */
  readonly latenciesMs: number[];
  /** Length of the measured window in seconds, as this process timed it. */
  readonly seconds: number;
}

export interface ClosedLoopOptions {
  readonly clients: number;
  readonly warmupMs: number;
  readonly measureMs: number;
  /** The request with sequence number `sequence` (counted across clients). */
  readonly next: (sequence: number) => Target;
  /** Called when the measured window opens and closes (the load keeps running through both). */
  readonly atMeasureStart?: () => Promise<void>;
  readonly atMeasureEnd?: () => Promise<void>;
}

/** Each client sends its next request once the last is answered, for the warm-up plus the measured window. */
export async function closedLoop(options: ClosedLoopOptions): Promise<LoopResult> {
  const latenciesMs: number[] = [];
  let acceptedTotal = 0;
  let errors = 0;
  let firstError: string | undefined;
  let sequence = 0;
  let measureFrom = Number.POSITIVE_INFINITY;
  let measureTo = Number.POSITIVE_INFINITY;
  let stopping = false;
  const clients = Array.from({ length: options.clients }, async () => {
    const connections = new Map<string, HttpConnection>();
    while (!stopping) {
      const target = options.next(sequence++);
      let connection = connections.get(target.url);
      if (connection === undefined) {
        connection = new HttpConnection(target.url);
        connections.set(target.url, connection);
      }
      const sentAt = performance.now();
      const outcome = await send(connection, target.request);
      const doneAt = performance.now();
      if (outcome === undefined) {
        acceptedTotal++;
        if (sentAt >= measureFrom && doneAt <= measureTo) latenciesMs.push(doneAt - sentAt);
      } else {
        errors++;
        firstError ??= outcome;
        await sleep(ERROR_PAUSE_MS);
      }
    }
    for (const connection of connections.values()) connection.close();
  });
  await sleep(options.warmupMs);
  await options.atMeasureStart?.();
  measureFrom = performance.now();
  await sleep(options.measureMs);
  measureTo = performance.now();
  await options.atMeasureEnd?.();
  stopping = true;
  await Promise.all(clients);
  return {
    completed: latenciesMs.length,
    acceptedTotal,
    errors,
    firstError,
    latenciesMs,
    seconds: (measureTo - measureFrom) / 1000,
  };
}

/** Sends one request; undefined when it was answered 200, else what happened instead. */
async function send(connection: HttpConnection, request: LoadRequest): Promise<string | undefined> {
  try {
    const answer = await connection.send(request, REQUEST_TIMEOUT_MS);
    return answer.status === 200 ? undefined : `HTTP ${answer.status}: ${answer.body.toString().trim().slice(0, 400)}`;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

export interface PacedResult {
  readonly sent: number;
  readonly accepted: number;
  readonly errors: number;
  readonly firstError: string | undefined;
  /** Requests sent later than planned by more than 100 ms (no connection was free: the load outran the system). */
  readonly late: number;
}

const PACE_TICK_MS = 5;
const PACED_CONNECTIONS_MAX = 256;
const LATE_MS = 100;

/** Sends `ratePerSecond` requests a second for `durationMs`, each on a free connection, whatever the answers' pace. */
export async function pacedLoad(options: {
  readonly ratePerSecond: number;
  readonly durationMs: number;
  readonly next: (sequence: number) => Target;
}): Promise<PacedResult> {
  const free = new Map<string, HttpConnection[]>();
  let open = 0;
  let sent = 0;
  let accepted = 0;
  let errors = 0;
  let late = 0;
  let firstError: string | undefined;
  const inFlight = new Set<Promise<void>>();
  const startedAt = performance.now();
  const total = Math.round((options.ratePerSecond * options.durationMs) / 1000);
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - startedAt) * options.ratePerSecond) / 1000));
    while (sent < due) {
      const target = options.next(sent);
      const pool = free.get(target.url) ?? [];
      free.set(target.url, pool);
      let connection = pool.pop();
      if (connection === undefined) {
        if (open >= PACED_CONNECTIONS_MAX) break; // every connection busy: wait for one
        connection = new HttpConnection(target.url);
        open++;
      }
      const plannedAt = startedAt + (sent * 1000) / options.ratePerSecond;
      if (performance.now() - plannedAt > LATE_MS) late++;
      sent++;
      const using = connection;
      const request = send(using, target.request).then(async (outcome) => {
        if (outcome === undefined) accepted++;
        else {
          errors++;
          firstError ??= outcome;
        }
        pool.push(using);
        inFlight.delete(request);
      });
      inFlight.add(request);
    }
    await sleep(PACE_TICK_MS);
  }
  await Promise.all(inFlight);
  for (const pool of free.values()) for (const connection of pool) connection.close();
  return { sent, accepted, errors, firstError, late };
}

/**
 * Resolves once every ingress has answered a round of probes with 404: requests for a function
 * type no module declares, spread over the partitions. The worker that runs a probed instance
 * refuses it (404) without changing anything, so a round of 404s through every ingress means
 * every probed partition has an owner and the workers reach each other (as
 * examples/cluster/ready.ts does). Throws past `timeoutMs`.
 */
export async function waitUntilAnswering(ingressUrls: readonly string[], timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last = "";
  for (let round = 0; performance.now() < deadline; round++) {
    const answers = await Promise.all(
      ingressUrls.flatMap((url) =>
        Array.from({ length: 32 }, async (_, index) => {
          const connection = new HttpConnection(url);
          try {
            const answer = await connection.send(
              { path: `/bench-probe/ready/${round}-${index}`, headers: { "content-type": "text/plain" }, body: "?" },
              5_000,
            );
            return answer.status === 404 ? undefined : `${url}: HTTP ${answer.status} ${answer.body.toString().trim()}`;
          } catch (error) {
            return `${url}: ${error instanceof Error ? error.message : String(error)}`;
          } finally {
            connection.close();
          }
        }),
      ),
    );
    const unready = answers.filter((answer) => answer !== undefined);
    if (unready.length === 0) return;
    last = `${unready.length} of ${answers.length} probes not answered yet, e.g. ${unready[0]}`;
    await sleep(250);
  }
  throw new Error(`the workers do not all answer within ${timeoutMs / 1000} s: ${last}`);
}

/**
 * Asks every id of `ids` (request-reply to bench/greeter) through `url`, again and again, until
 * each has been answered 200 once or `timeoutMs` passes. Resolves with when each id first
 * answered (performance.now() time); ids missing from the map never did.
 */
export async function untilAllAnswer(options: {
  readonly url: string;
  readonly ids: readonly string[];
  readonly clients: number;
  readonly timeoutMs: number;
}): Promise<Map<string, number>> {
  const answeredAt = new Map<string, number>();
  const queue = [...options.ids];
  const deadline = performance.now() + options.timeoutMs;
  await Promise.all(
    Array.from({ length: options.clients }, async () => {
      const connection = new HttpConnection(options.url);
      while (answeredAt.size < options.ids.length && performance.now() < deadline) {
        const id = queue.shift();
        if (id === undefined) {
          await sleep(ERROR_PAUSE_MS);
          continue;
        }
        const outcome = await send(connection, {
          path: `/bench/greeter/${id}`,
          headers: { prefer: "wait=5", "content-type": "text/plain" },
          body: `user${id}`,
        });
        if (outcome === undefined) answeredAt.set(id, performance.now());
        else {
          queue.push(id);
          await sleep(ERROR_PAUSE_MS);
        }
      }
      connection.close();
    }),
  );
  return answeredAt;
}
