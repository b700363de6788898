// `eddy dead-letters list|replay`: what the failure policy set aside, and putting it back.
// Listing works while Eddy runs; replay needs it stopped and takes effect at its next start.
// Each letter is named by its id (`<partition>-<epoch>-<count>`, unique in the state directory).
import { parseArgs } from "node:util";
import { type ListedDeadLetter, listDeadLetters, queueReplay, runningProcess } from "@eddy/runtime";
import { CommandError, UsageError } from "../usage.ts";
import { ConfigurationError } from "./run.ts";

function describe({ id, letter }: ListedDeadLetter): string {
  const where =
    letter.ingress !== undefined
      ? `ingress ${letter.ingress} (for ${letter.target.typename}, not replayable)`
      : letter.egress === undefined
        ? `${letter.target.typename}/${letter.target.id}`
        : `egress ${letter.egress} (from ${letter.target.typename}/${letter.target.id})`;
  return `${id}  ${new Date(letter.atMs).toISOString()}  ${where}  ${letter.invocations.length} message(s)\n    ${letter.reason}`;
}

/** A letter in --json: its id and partition first, then the stored record (bytes in base64). */
function toJson({ id, partition, letter }: ListedDeadLetter): unknown {
  return { id, partition, ...letter };
}

/** A JSON replacer writing bytes as base64. Reads the holder: a Buffer's toJSON runs before the replacer sees the value. */
function bytesAsBase64(this: unknown, key: string, value: unknown): unknown {
  const raw = (this as Record<string, unknown>)[key];
  return raw instanceof Uint8Array ? Buffer.from(raw).toString("base64") : value;
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
      process.stdout.write(`${JSON.stringify(letters.map(toJson), bytesAsBase64)}\n`);
    } else {
      for (const letter of letters) process.stdout.write(`${describe(letter)}\n`);
      process.stdout.write(`${letters.length} dead letter(s) in ${stateDir}\n`);
    }
    return;
  }
  if (action === "replay") {
    if ((rest.length === 0) === (values.all !== true)) throw new UsageError("give dead letter ids or --all");
    const pid = runningProcess(stateDir);
    if (pid !== undefined) {
      throw new ConfigurationError(
        `Eddy (process ${pid}) is running on ${stateDir}; stop it first, the replay happens at its next start`,
      );
    }
    const result = await queueReplay(stateDir, values.all === true ? "all" : rest);
    if (!result.ok) throw result.usage ? new UsageError(result.error) : new CommandError(result.error);
    for (const { id, letter } of result.queued) {
      const what = letter.egress === undefined ? "" : `egress ${letter.egress} from `;
      process.stdout.write(`queued ${id} (${what}${letter.target.typename}/${letter.target.id}) for replay\n`);
    }
    process.stdout.write(
      `${result.queued.length} dead letter(s) queued; they are delivered when Eddy next starts on ${stateDir}\n`,
    );
    return;
  }
  throw new UsageError(
    action === undefined ? "give list or replay" : `unknown action "${action}"; expected list or replay`,
  );
}
