// How `eddy dead-letters` writes a letter, the same whether it was read from a state
// directory, asked of a cluster's workers or of a running Eddy's admin API: scripts and tests
// read these lines (`<id>  <time>  <where>  <n> message(s)`, then the reason indented).

export interface LetterSummary {
  readonly id: string;
  readonly atMs: number;
  readonly target: { readonly typename: string; readonly id: string };
  readonly egress?: string | undefined;
  readonly ingress?: string | undefined;
  readonly reason: string;
  readonly messageCount: number;
}

export function letterLine(letter: LetterSummary): string {
  const { target } = letter;
  const where =
    letter.ingress !== undefined
      ? `ingress ${letter.ingress} (for ${target.typename}, not replayable)`
      : letter.egress === undefined
        ? `${target.typename}/${target.id}`
        : `egress ${letter.egress} (from ${target.typename}/${target.id})`;
  return `${letter.id}  ${new Date(letter.atMs).toISOString()}  ${where}  ${letter.messageCount} message(s)\n    ${letter.reason}`;
}

/** What a letter was for, in a few words: `replayed <id> (<this>)`. */
export function letterWhat(letter: LetterSummary): string {
  const egress = letter.egress === undefined ? "" : `egress ${letter.egress} from `;
  return `${egress}${letter.target.typename}/${letter.target.id}`;
}
