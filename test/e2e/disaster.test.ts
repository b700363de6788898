// The disaster test (issue 5): the StateFun smoke workload runs against `eddy dev` (and
// `eddy run --threads 2` with the functions over HTTP) with checkpoints to blob storage and
// --ack-after-checkpoint; at random moments the runtime is
// killed with SIGKILL, and every other time its whole state directory is deleted too, as if
// the machine were lost: it starts again on an empty directory, restores the newest
// checkpoint and goes on (the other times it restarts on its own directory, checkpoints
// continuing their chain).
// The source is replayable from the client's side: every command carries an
// Idempotency-Key and is re-sent until acknowledged, and an acknowledgement means a
// checkpoint holds the command. Invariants: no instance ever counts more than expected,
// and every instance reaches its expected count. (Egress records are not checked for
// exactly-once here: the playground egress is not transactional, and a lost disk forgets
// which records were already handed out.)
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, serve } from "@eddy/sdk";
import { startGcsServer, startS3Server } from "../support/blob-servers.ts";
import { logMessages } from "../support/log-records.ts";
import { EddyProcess, playgroundYaml, smokeEndpointYaml, withEddy } from "./smoke/cluster.ts";
import { EGRESS_TOPIC, generateWorkload, Random } from "./smoke/commands.ts";
import { sendAll, verifyAll } from "./smoke/driver.ts";
import { commandInterpreter } from "./smoke/eddy-functions.ts";

const INSTANCES = 64;
const COMMANDS = Number(process.env.DISASTER_COMMANDS ?? 400);
/** Each of the 4 senders pauses this long after each command, so the disasters strike while commands still arrive. */
const PACE_MS = 20;
/** Kills; every other one also deletes the state directory (the others restart on it, checkpoints and all). */
const KILLS = Number(process.env.DISASTER_KILLS ?? 4);
const SEED = Number(process.env.DISASTER_SEED ?? 11);

const checkpointArgs = (location: string) => [
  "--state-dir",
  "{{STATE_DIR}}",
  "--checkpoints",
  location,
  "--checkpoint-interval",
  "1s",
  "--ack-after-checkpoint",
];

/**
 * `location`: the checkpoint URL, `{{DIR}}` standing for the deployment's folder. By default
 * `eddy dev` with the functions in process; `functionsUrl`: `eddy run --threads 2` calling the
 * functions there.
 */
async function disaster(location: string, seed: number, functionsUrl?: string): Promise<void> {
  const workload = generateWorkload(seed, INSTANCES, COMMANDS);
  const io = playgroundYaml(["verification", EGRESS_TOPIC]);
  const eddy =
    functionsUrl === undefined
      ? new EddyProcess({
          moduleYaml: io,
          args: ["dev", "test/e2e/smoke/eddy-functions.ts", "--module", "{{MODULE}}", ...checkpointArgs(location)],
        })
      : new EddyProcess({
          moduleYaml: smokeEndpointYaml(functionsUrl) + io,
          args: ["run", "{{MODULE}}", "--threads", "2", "--admin-port", "off", ...checkpointArgs(location)],
        });
  await eddy.start();
  const deadlineMs = Date.now() + 120_000 + KILLS * 5_000 + COMMANDS * 50;
  const random = new Random(seed);
  await withEddy(eddy, async () => {
    let failure: { error: unknown } | undefined;
    let sent = false;
    const work = (async () => {
      await sendAll(eddy, workload, 4, deadlineMs, PACE_MS);
      sent = true;
      await verifyAll(eddy, workload.expected, deadlineMs);
    })().catch((error: unknown) => {
      failure = { error };
    });
    let kills = 0;
    let disasters = 0;
    let duringSending = 0;
    while (kills < KILLS && failure === undefined) {
      await sleep(400 + random.int(800));
      await eddy.kill();
      kills++;
      if (!sent) duringSending++;
      if (kills % 2 === 1) {
        rmSync(eddy.stateDir, { recursive: true, force: true });
        disasters++;
      }
      await eddy.start();
    }
    await work;
    if (failure !== undefined) throw failure.error;
    assert.equal(kills, KILLS);
    assert.ok(duringSending > 0, "a kill struck while commands were still being sent");
    const restores = logMessages(eddy.output).filter((line) => line.startsWith("restored checkpoint")).length;
    assert.equal(restores, disasters, "every start on an empty directory restored a checkpoint, and only those");
    // Once more after the last restore: the counts are final and still exact.
    await verifyAll(eddy, workload.expected, deadlineMs);
    assert.equal(await eddy.stop(), 0, "clean shutdown on SIGTERM");
  });
}

describe("disaster: the disk is lost, the checkpoints are not", { timeout: 3_600_000 }, () => {
  it("restores from a directory and finishes exactly", async () => {
    await disaster("{{DIR}}/checkpoints", SEED);
  });

  it("restores from a directory and finishes exactly, the partitions on 2 threads (eddy run --threads 2)", async () => {
    const server = await serve(createEndpoint([commandInterpreter]), { port: 0 });
    try {
      await disaster("{{DIR}}/checkpoints", SEED + 3, server.url);
    } finally {
      await server.close();
    }
  });

  it("restores from an S3-compatible server (versitygw) and finishes exactly", async () => {
    const server = await startS3Server({ prefix: "disaster" });
    // The runtime reads credentials the AWS way: from its environment.
    Object.assign(process.env, server.env);
    try {
      await disaster(server.url, SEED + 1);
    } finally {
      await server.stop();
    }
  });

  it("restores from Google Cloud Storage (fake-gcs-server) and finishes exactly", async () => {
    const server = await startGcsServer({ prefix: "disaster" });
    try {
      await disaster(server.url, SEED + 2);
    } finally {
      await server.stop();
    }
  });
});
