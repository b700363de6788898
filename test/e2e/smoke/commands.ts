// The StateFun smoke workload (statefun-protocol.md §6.1), as JSON so every SDK variant
// (official JS, Eddy over HTTP, Eddy in-process) reads the same messages: a seeded
// generator of nested command trees, and the expected-count model it keeps.

import { Random } from "../../../packages/runtime/test/sim/random.ts";

export { Random };

export type Command =
  | { readonly increment: true }
  | { readonly send: { readonly target: number; readonly commands: readonly Command[] } }
  | { readonly sendAfter: { readonly target: number; readonly commands: readonly Command[] } }
  | { readonly sendEgress: string }
  | { readonly verify: number };

export interface SourceCommand {
  readonly target: number;
  readonly commands: readonly Command[];
}

export interface VerificationResult {
  readonly id: number;
  readonly expected: number;
  readonly actual: number;
}

export const FUNCTION_TYPENAME = "statefun.smoke.e2e/command-interpreter-fn";
export const SOURCE_COMMAND_TYPENAME = "statefun.smoke.e2e/source-command";
export const COMMANDS_TYPENAME = "statefun.smoke.e2e/commands";
export const EGRESS_ID = "io.statefun.playground/egress";
export const EGRESS_RECORD_TYPENAME = "io.statefun.playground/EgressRecord";
/** Topic of the unique ids sent by sendEgress commands: each must arrive exactly once. */
export const EGRESS_TOPIC = "smoke-egress";
export const VERIFICATION_TOPIC = "verification";
/** Delay of sendAfter commands (StateFun's JS variant uses 1 s; shorter keeps the test quick). */
export const SEND_AFTER_MS = 50;

export interface Workload {
  readonly commands: readonly SourceCommand[];
  readonly expected: readonly number[];
  readonly egressIds: readonly string[];
}

/** StateFun's weights: sends dominate, sendAfter 10%, egress 3%, the rest increments. */
export function generateWorkload(seed: number, instances: number, count: number, maxDepth = 10): Workload {
  const random = new Random(seed);
  const expected = new Array<number>(instances).fill(0);
  const egressIds: string[] = [];

  function tree(depth: number, at: number): Command[] {
    if (depth === 0) {
      expected[at] = (expected[at] ?? 0) + 1;
      return [{ increment: true }];
    }
    const commands: Command[] = [];
    for (let index = random.int(3); index > 0; index--) {
      const roll = random.next();
      if (roll < 0.4) {
        expected[at] = (expected[at] ?? 0) + 1;
        commands.push({ increment: true });
      } else if (roll < 0.82) {
        const target = random.int(instances);
        commands.push({ send: { target, commands: tree(depth - 1, target) } });
      } else if (roll < 0.92) {
        const target = random.int(instances);
        commands.push({ sendAfter: { target, commands: tree(depth - 1, target) } });
      } else {
        const id = `${seed}-${egressIds.length}`;
        egressIds.push(id);
        commands.push({ sendEgress: id });
      }
    }
    if (commands.length === 0) {
      expected[at] = (expected[at] ?? 0) + 1;
      commands.push({ increment: true });
    }
    return commands;
  }

  const commands: SourceCommand[] = [];
  for (let index = 0; index < count; index++) {
    const target = random.int(instances);
    commands.push({ target, commands: tree(random.int(maxDepth), target) });
  }
  return { commands, expected, egressIds };
}
