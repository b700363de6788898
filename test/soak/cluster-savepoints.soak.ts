// The savepoint soak: three workers pass tokens between accounts (test/e2e/smoke/token-kit.ts)
// while savepoints are asked of a random worker again and again, and a random worker is killed
// with kill -9 every few rounds (restarted on its state directory, or every other time on an
// empty one). Savepoints asked while a worker is dead or the group rebalances fail, naming
// why; the others must each be a consistent cut.
//
// Invariants: the cluster itself ends with exactly the tokens' totals (holding and releasing
// commits around kills loses and doubles nothing); every savepoint taken is complete; and new
// clusters seeded from several of them (the first, one from the middle, the last) each end
// with exactly the same totals.
//
// Not in `npm test` (its name is not *.test.ts): test/soak/cluster-savepoints.sh runs it.
// SOAK_SAVEPOINT_ROUNDS scales it (default 40); SOAK_SEED picks the victims.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type EddyProcess, withEddy } from "../e2e/smoke/cluster.ts";
import {
  drainedTokens,
  requestSavepoint,
  sendToken,
  sharePartitions,
  type TokenWorkload,
  tokenClusters,
} from "../e2e/smoke/token-kit.ts";

const PARTITIONS = 128;
const ROUNDS = Number(process.env.SOAK_SAVEPOINT_ROUNDS ?? "40");
/** A kill every this many rounds. */
const KILL_EVERY = 4;
/** Enough hops that tokens are still under way when the last savepoint is taken. */
const WORKLOAD: TokenWorkload = { accounts: 48, tokens: 32, hops: Math.max(400, ROUNDS * 40) };

let seed = Number(process.env.SOAK_SEED ?? Date.now() % 100_000);
function random(): number {
  seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
  return seed / 2_147_483_648;
}

const { worker, seed: seedCluster } = tokenClusters(WORKLOAD, "eddy-sp-soak-");

async function withAll(workers: readonly EddyProcess[], work: () => Promise<void>): Promise<void> {
  const [first, ...rest] = workers;
  if (first === undefined) return work();
  return withEddy(first, () => withAll(rest, work));
}

describe("savepoints of a cluster under kill -9", { timeout: 3_600_000 }, () => {
  it(`${ROUNDS} savepoints asked of a random worker of three, a worker killed every ${KILL_EVERY} rounds; seeded clusters end with the same totals`, async () => {
    console.log(`SOAK_SEED=${seed}`);
    const workers = [worker("spsoak", "w1"), worker("spsoak", "w2"), worker("spsoak", "w3")];
    const taken: Record<string, unknown>[] = [];
    const refused = new Map<string, number>();
    await withAll(workers, async () => {
      for (const eddy of workers) await eddy.start();
      await sharePartitions(workers, PARTITIONS);
      for (let token = 0; token < WORKLOAD.tokens; token++) {
        await sendToken(workers[token % workers.length] as EddyProcess, WORKLOAD, token);
      }
      let down: EddyProcess | undefined;
      for (let round = 0; round < ROUNDS; round++) {
        if (round % KILL_EVERY === KILL_EVERY - 1) {
          if (down !== undefined) {
            await down.start();
            down = undefined;
          } else {
            down = workers[Math.floor(random() * workers.length)] as EddyProcess;
            await down.kill();
            if (round % (2 * KILL_EVERY) === KILL_EVERY - 1) down.wipeState();
          }
        }
        const alive = workers.filter((eddy) => eddy !== down);
        const via = alive[Math.floor(random() * alive.length)] as EddyProcess;
        const { status, body } = await requestSavepoint(via, `r${round}`).catch((error: unknown) => ({
          status: 0,
          body: { code: "no-answer", message: String(error) } as Record<string, unknown>,
        }));
        if (status === 200) {
          assert.equal(body.partitions, PARTITIONS, JSON.stringify(body));
          taken.push(body);
        } else {
          // Refused for a reason a user can act on, never an internal error.
          assert.ok([409, 503, 0].includes(status), `round ${round}: ${status} ${JSON.stringify(body)}`);
          const code = String(body.code);
          refused.set(code, (refused.get(code) ?? 0) + 1);
          console.log(
            `round ${round}${down === undefined ? "" : " (a worker down)"}: ${status} ${code}: ${String(body.message)}`,
          );
        }
        await sleep(300 + random() * 700);
      }
      if (down !== undefined) await down.start();
      await sharePartitions(workers, PARTITIONS);
      await drainedTokens(workers[0] as EddyProcess, WORKLOAD, 300_000);
      for (const eddy of workers) assert.equal(await eddy.stop(), 0);
    });
    console.log(
      `${taken.length} savepoints of ${ROUNDS} taken (held ${taken.map((body) => body.heldMs).join(", ")} ms); refused: ${JSON.stringify(Object.fromEntries(refused))}`,
    );
    assert.ok(taken.length >= Math.min(3, ROUNDS / 4), `only ${taken.length} savepoints of ${ROUNDS} were taken`);

    const chosen = [...new Set([taken[0], taken[Math.floor(taken.length / 2)], taken.at(-1)])] as Record<
      string,
      unknown
    >[];
    for (const [index, savepoint] of chosen.entries()) {
      const name = savepoint.name as string;
      const cluster = `spseed${index}`;
      const seeded = await seedCluster(name, cluster);
      assert.equal(seeded.status, 0, seeded.stderr);
      console.log(seeded.stdout.trim());
      const fresh = [worker(cluster, "s1"), worker(cluster, "s2")];
      await withAll(fresh, async () => {
        for (const eddy of fresh) await eddy.start();
        await sharePartitions(fresh, PARTITIONS);
        await drainedTokens(fresh[1] as EddyProcess, WORKLOAD, 300_000);
      });
    }
  });
});
