// When a cluster answers: every worker's ingress routes a request to the worker that runs its
// instance, and that worker takes it. Until the workers have divided the partitions, requests
// get 503 (nobody runs the instance yet). The probe asks for instances of a function type no
// module declares, spread over the partitions: the worker that runs one answers 404 (unknown
// function) without changing anything, so a round of 404s through every worker means the
// partitions have owners and the workers reach each other.
import { setTimeout as sleep } from "node:timers/promises";

/** Instances probed per worker and round: each lands on one of the cluster's partitions. */
const PROBES_PER_WORKER = 24;
const ROUND_GAP_MS = 250;
const PROBE_TIMEOUT_MS = 5_000;
const PROBE_TYPE = "eddy.example/ready-probe";

/** Resolves once every ingress has answered a whole round of probes with 404; throws past `deadlineMs`. */
export async function waitUntilAnswering(ingressUrls: readonly string[], deadlineMs: number): Promise<void> {
  let last = "";
  for (let round = 0; ; round++) {
    const answers = await Promise.all(
      ingressUrls.flatMap((ingressUrl) =>
        Array.from({ length: PROBES_PER_WORKER }, (_, index) => probe(ingressUrl, `${round}-${index}`)),
      ),
    );
    const unready = answers.filter((answer) => answer !== "404");
    if (unready.length === 0) return;
    last = `${unready.length} of ${answers.length} probes not answered yet, e.g. ${unready[0]}`;
    if (Date.now() + ROUND_GAP_MS > deadlineMs) throw new Error(`the workers do not all answer: ${last}`);
    await sleep(ROUND_GAP_MS);
  }
}

/** The status as text ("404" when routed and refused), or why there was none. */
async function probe(ingressUrl: string, id: string): Promise<string> {
  const target = new URL(`${PROBE_TYPE}/${id}`, ingressUrl);
  try {
    const response = await fetch(target, {
      method: "PUT",
      headers: { "content-type": "text/plain" },
      body: "ready?",
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    });
    const body = await response.text();
    return response.status === 404 ? "404" : `${response.status} from ${target.host}: ${body.trim()}`;
  } catch (error) {
    return `no answer from ${target.host}: ${error instanceof Error ? error.message : String(error)}`;
  }
}
