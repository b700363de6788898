// `eddy dead-letters list|replay`: what the failure policy set aside, and putting it back.
// Listing works while Eddy runs; replay needs it stopped and takes effect at its next start.
import { parseArgs } from "node:util";
import { listDeadLetters, queueReplay, runningProcess } from "@eddy/runtime";
import { UsageError } from "../usage.ts";
import { ConfigurationError } from "./run.ts";

function describe(letter: {
  seq: number;
  target: { typename: string; id: string };
  egress?: string;
  ingress?: string;
  invocations: readonly unknown[];
  reason: string;
  atMs: number;
}): string {
  const where =
    letter.ingress !== undefined
      ? `ingress ${letter.ingress} (for ${letter.target.typename}, not replayable)`
      : letter.egress === undefined
        ? `${letter.target.typename}/${letter.target.id}`
        : `egress ${letter.egress} (from ${letter.target.typename}/${letter.target.id})`;
  return `#${letter.seq}  ${new Date(letter.atMs).toISOString()}  ${where}  ${letter.invocations.length} message(s)\n    ${letter.reason}`;
}

export async function deadLettersCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { "state-dir": { type: "string" }, all: { type: "boolean" }, json: { type: "boolean" } },
  });
  const [action, ...rest] = positionals;
  const stateDir = values["state-dir"] ?? "eddy-state";
  if (action === "list") {
    if (rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(" ")}`);
    const letters = await listDeadLetters(stateDir);
    if (values.json === true) {
      process.stdout.write(
        `${JSON.stringify(
          letters.map(({ letter }) => letter),
          (_, value) => (value instanceof Uint8Array ? Buffer.from(value).toString("base64") : value),
        )}\n`,
      );
    } else {
      for (const { letter } of letters) process.stdout.write(`${describe(letter)}\n`);
      process.stdout.write(`${letters.length} dead letter(s) in ${stateDir}\n`);
    }
    return;
  }
  if (action === "replay") {
    const seqs = rest.map((text) => {
      const seq = Number(text.replace(/^#/, ""));
      if (!Number.isSafeInteger(seq) || seq <= 0) throw new UsageError(`"${text}" is not a dead letter number`);
      return seq;
    });
    if ((seqs.length === 0) === (values.all !== true)) throw new UsageError("give dead letter numbers or --all");
    const pid = runningProcess(stateDir);
    if (pid !== undefined) {
      throw new ConfigurationError(
        `Eddy (process ${pid}) is running on ${stateDir}; stop it first, the replay happens at its next start`,
      );
    }
    const wanted = new Set(seqs);
    const queued = await queueReplay(stateDir, values.all === true ? undefined : (letter) => wanted.has(letter.seq));
    const missing = seqs.filter((seq) => !queued.some(({ letter }) => letter.seq === seq));
    for (const { letter } of queued) process.stdout.write(`queued #${letter.seq} for replay\n`);
    process.stdout.write(
      `${queued.length} dead letter(s) queued; they are delivered when Eddy next starts on ${stateDir}\n`,
    );
    if (missing.length > 0)
      throw new ConfigurationError(`no dead letter ${missing.map((seq) => `#${seq}`).join(", ")} in ${stateDir}`);
    return;
  }
  throw new UsageError(
    action === undefined ? "give list or replay" : `unknown action "${action}"; expected list or replay`,
  );
}
