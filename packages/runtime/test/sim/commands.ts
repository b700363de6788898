// The smoke workload (statefun-protocol.md §6.1), shrunk for simulation: a seeded
// generator of nested command trees with the expected-count model, and the command
// interpreter function, written directly against the wire shapes (no encoding) so
// thousands of schedules run in seconds.

import type { FromFunction, Init, InvocationResponse, ToFunction, TypedValue } from "@eddy/protocol";
import { ExpireMode, MutationType } from "@eddy/protocol";
import type { KV } from "../../src/core/kv.ts";
import type { Random } from "./random.ts";

export type Command =
  | { readonly inc: true }
  | { readonly send: { readonly to: number; readonly cmds: readonly Command[] } }
  | {
      readonly after: {
        readonly to: number;
        readonly delayMs: number;
        readonly cmds: readonly Command[];
        readonly token?: string;
      };
    }
  | { readonly cancel: string }
  | { readonly egress: string };

export const FUNCTION_TYPE = "sim/fn";
export const EGRESS_ID = "sim/out";
const COMMANDS_TYPENAME = "sim/commands";
const COUNT_TYPENAME = "sim/count";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function commandsValue(cmds: readonly Command[]): TypedValue {
  return { typename: COMMANDS_TYPENAME, hasValue: true, value: encoder.encode(JSON.stringify(cmds)) };
}

export interface SourceCommand {
  readonly target: number;
  readonly cmds: readonly Command[];
}

export interface Workload {
  readonly commands: readonly SourceCommand[];
  /** expectedAfter[n][i]: the count instance i must reach once commands 0..n-1 are processed. */
  readonly expectedAfter: readonly (readonly number[])[];
  /** Egress ids that must each appear exactly once in the end. */
  readonly expectedEgress: ReadonlySet<string>;
  /** Egress ids that must never appear (they ride on cancelled messages). */
  readonly forbiddenEgress: ReadonlySet<string>;
}

export function generateWorkload(random: Random, instances: number, commandCount: number, maxDepth: number): Workload {
  const commands: SourceCommand[] = [];
  const expected = new Array<number>(instances).fill(0);
  const expectedAfter: number[][] = [[...expected]];
  const expectedEgress = new Set<string>();
  const forbiddenEgress = new Set<string>();
  let egressCounter = 0;
  let tokenCounter = 0;

  function tree(depth: number, at: number): Command[] {
    if (depth === 0) {
      expected[at] = (expected[at] ?? 0) + 1;
      return [{ inc: true }];
    }
    const cmds: Command[] = [];
    const count = random.int(3);
    for (let index = 0; index < count; index++) {
      const roll = random.next();
      if (roll < 0.35) {
        expected[at] = (expected[at] ?? 0) + 1;
        cmds.push({ inc: true });
      } else if (roll < 0.7) {
        const to = random.int(instances);
        cmds.push({ send: { to, cmds: tree(depth - 1, to) } });
      } else if (roll < 0.82) {
        const to = random.int(instances);
        cmds.push({ after: { to, delayMs: random.int(40), cmds: tree(depth - 1, to) } });
      } else if (roll < 0.9) {
        const id = `e${egressCounter++}`;
        expectedEgress.add(id);
        cmds.push({ egress: id });
      } else {
        // A delayed message cancelled in the same reply: its egress must never show up.
        const token = `t${tokenCounter++}`;
        const id = `cancelled${egressCounter++}`;
        forbiddenEgress.add(id);
        cmds.push(
          { after: { to: random.int(instances), delayMs: random.int(40), cmds: [{ egress: id }], token } },
          { cancel: token },
        );
      }
    }
    if (cmds.length === 0) {
      expected[at] = (expected[at] ?? 0) + 1;
      cmds.push({ inc: true });
    }
    return cmds;
  }

  for (let index = 0; index < commandCount; index++) {
    const target = random.int(instances);
    commands.push({ target, cmds: tree(random.int(maxDepth + 1), target) });
    expectedAfter.push([...expected]);
  }
  return { commands, expectedAfter, expectedEgress, forbiddenEgress };
}

export function readCount(value: Uint8Array | undefined): number {
  return value === undefined ? 0 : Number(decoder.decode(value));
}

/**
 * The command interpreter as a remote function would be: stateless between requests,
 * state only from the request. Declares one state, `count`, and asks for it if missing.
 */
export function interpret(request: Init<ToFunction>): FromFunction {
  const batch = request.invocation;
  if (batch === null || batch === undefined) throw new Error("request without a batch");
  const entry = (batch.state ?? []).find((state) => state.stateName === "count");
  if (entry === undefined) {
    return {
      invocationResult: null,
      incompleteInvocationContext: {
        missingValues: [
          {
            stateName: "count",
            typeTypename: COUNT_TYPENAME,
            expirationSpec: { mode: ExpireMode.NONE, expireAfterMillis: 0 },
          },
        ],
      },
    };
  }
  let count = readCount(entry.stateValue?.value ?? undefined);
  let changed = false;
  const result: InvocationResponse = {
    stateMutations: [],
    outgoingMessages: [],
    delayedInvocations: [],
    outgoingEgresses: [],
  };
  const target = (to: number) => ({ namespace: "sim", type: "fn", id: String(to) });
  for (const invocation of batch.invocations ?? []) {
    const cmds = JSON.parse(decoder.decode(invocation.argument?.value ?? new Uint8Array())) as Command[];
    for (const cmd of cmds) {
      if ("inc" in cmd) {
        count++;
        changed = true;
      } else if ("send" in cmd) {
        result.outgoingMessages.push({ target: target(cmd.send.to), argument: commandsValue(cmd.send.cmds) });
      } else if ("after" in cmd) {
        result.delayedInvocations.push({
          isCancellationRequest: false,
          cancellationToken: cmd.after.token ?? "",
          delayInMs: cmd.after.delayMs,
          target: target(cmd.after.to),
          argument: commandsValue(cmd.after.cmds),
        });
      } else if ("cancel" in cmd) {
        result.delayedInvocations.push({
          isCancellationRequest: true,
          cancellationToken: cmd.cancel,
          delayInMs: 0,
          target: null,
          argument: null,
        });
      } else {
        result.outgoingEgresses.push({
          egressNamespace: "sim",
          egressType: "out",
          argument: { typename: "sim/egress", hasValue: true, value: encoder.encode(cmd.egress) },
        });
      }
    }
    // A source command waits for its reply (request-reply): answer it with the count so far.
    const caller = invocation.caller;
    if (caller?.namespace === "eddy.ingress" && caller.type === "reply") {
      result.outgoingMessages.push({
        target: { namespace: caller.namespace, type: caller.type, id: caller.id ?? "" },
        argument: { typename: COUNT_TYPENAME, hasValue: true, value: encoder.encode(String(count)) },
      });
    }
  }
  if (changed) {
    result.stateMutations.push({
      mutationType: MutationType.MODIFY,
      stateName: "count",
      stateValue: { typename: COUNT_TYPENAME, hasValue: true, value: encoder.encode(String(count)) },
    });
  }
  return { invocationResult: result, incompleteInvocationContext: null };
}

/**
 * Reads the egress ids in the durable sink (`["sink", …]` rows) into `seen` (cleared first):
 * the first violation, an id published twice or one riding on a cancelled message, or
 * undefined.
 */
export function readSink(durable: KV, workload: Workload, seen: Set<string>): string | undefined {
  seen.clear();
  for (const { value } of durable.scan(["sink"])) {
    const id = value as string;
    if (seen.has(id)) return `egress ${id} published twice`;
    if (workload.forbiddenEgress.has(id)) return `egress ${id} rides on a cancelled message but was published`;
    seen.add(id);
  }
  return undefined;
}
