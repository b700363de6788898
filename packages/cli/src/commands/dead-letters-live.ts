// `eddy dead-letters list|show|replay|discard` against a running embedded Eddy, through its
// admin API (the control socket of its state directory, or --admin URL): a replay is delivered
// at once and a discard is gone at once, each in a commit of the running process.
//
// `--all` lists the letters first and then replays (or discards) them a chunk at a time, so that
// many letters show progress and no single commit grows with their number: each chunk is all or
// none, the whole is not; letters that arrive after the listing are left for the next run.
// Named ids go in one request: all or none, as the user named them.
import { type AdminClient, AdminError } from "../admin-client.ts";
import { type LetterSummary, letterLine, letterWhat } from "../dead-letter-lines.ts";
import { progressLine } from "../progress-line.ts";
import { CommandError } from "../usage.ts";

/** Letters per replay or discard request with --all, and per listing page. */
const CHUNK_LETTERS = 100;
const PAGE_LETTERS = 1000;

/** A letter as GET /v1/dead-letters lists it. */
interface ApiLetter {
  readonly id: string;
  readonly partition: number;
  readonly atMs: number;
  readonly target: { readonly typename: string; readonly id: string };
  readonly reason: string;
  /** How many messages it holds (a count in the listing; the whole letter has them all). */
  readonly messages: number | readonly unknown[];
  readonly egress?: string;
  readonly ingress?: string;
  readonly replayable: boolean;
}

export type LiveAction = "replay" | "discard";

function summaryOf(letter: ApiLetter): LetterSummary {
  return {
    ...letter,
    messageCount: typeof letter.messages === "number" ? letter.messages : letter.messages.length,
  };
}

async function listAll(client: AdminClient): Promise<ApiLetter[]> {
  const letters: ApiLetter[] = [];
  let after: string | null = null;
  do {
    const query = new URLSearchParams({ limit: String(PAGE_LETTERS) });
    if (after !== null) query.set("after", after);
    const page: { deadLetters: ApiLetter[]; next: string | null } = await client.call(
      "GET",
      `/v1/dead-letters?${query}`,
    );
    letters.push(...page.deadLetters);
    after = page.next;
  } while (after !== null);
  return letters;
}

/** `place`: where the letters are, for the summary line ("in DIR", as the offline listing says). */
export async function listLive(client: AdminClient, json: boolean, place: string): Promise<void> {
  const letters = await listAll(client);
  if (json) {
    process.stdout.write(`${JSON.stringify(letters)}\n`);
    return;
  }
  for (const letter of letters) process.stdout.write(`${letterLine(summaryOf(letter))}\n`);
  process.stdout.write(`${letters.length} dead letter(s) ${place}\n`);
}

export async function showLive(client: AdminClient, id: string): Promise<void> {
  const letter = await client.call<unknown>("GET", `/v1/dead-letters/${encodeURIComponent(id)}`);
  process.stdout.write(`${JSON.stringify(letter, null, 2)}\n`);
}

const PAST: Record<LiveAction, "replayed" | "discarded"> = { replay: "replayed", discard: "discarded" };

async function act(client: AdminClient, action: LiveAction, ids: readonly string[]): Promise<string[]> {
  const answer = await client.call<Partial<Record<"replayed" | "discarded", string[]>>>(
    "POST",
    `/v1/dead-letters/${action}`,
    { ids },
  );
  return answer[PAST[action]] ?? [];
}

export async function replayOrDiscardLive(
  client: AdminClient,
  action: LiveAction,
  selection: "all" | readonly string[],
): Promise<void> {
  const past = PAST[action];
  if (selection !== "all") {
    const done = await act(client, action, selection);
    for (const id of done) process.stdout.write(`${past} ${id}\n`);
    process.stdout.write(`${done.length} dead letter(s) ${past} by ${client.where}\n`);
    return;
  }
  const listed = await listAll(client);
  // Records an ingress could not route are kept for inspection: replay cannot route them either.
  const chosen = action === "replay" ? listed.filter((letter) => letter.replayable) : listed;
  const progress = progressLine();
  let doneCount = 0;
  for (let start = 0; start < chosen.length; start += CHUNK_LETTERS) {
    const chunk = chosen.slice(start, start + CHUNK_LETTERS);
    let done: string[];
    try {
      done = await act(
        client,
        action,
        chunk.map(({ id }) => id),
      );
    } catch (error) {
      progress?.end();
      const why = error instanceof AdminError || error instanceof CommandError ? error.message : String(error);
      throw new CommandError(`${past} ${doneCount} of ${chosen.length} dead letter(s), then: ${why}`);
    }
    const byId = new Map(chunk.map((letter) => [letter.id, letter]));
    for (const id of done) {
      const letter = byId.get(id);
      process.stdout.write(`${past} ${id}${letter === undefined ? "" : ` (${letterWhat(summaryOf(letter))})`}\n`);
    }
    doneCount += done.length;
    progress?.show(`${past} ${doneCount} of ${chosen.length} dead letter(s)`);
  }
  progress?.end();
  const kept = listed.length - chosen.length;
  const note = kept === 0 ? "" : ` (${kept} not replayable: records an ingress could not route)`;
  process.stdout.write(`${doneCount} dead letter(s) ${past} by ${client.where}${note}\n`);
}
