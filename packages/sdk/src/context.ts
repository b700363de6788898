// The context a handler gets: who it is, who called, its state, and the effects it
// asks for. Effects are collected in wire form, in call order, for the batch's reply.
import type {
  DelayedInvocation,
  FromFunctionInvocation,
  Init,
  Address as WireAddress,
  EgressMessage as WireEgressMessage,
} from "@eddy/protocol";
import { Address } from "./address.ts";
import type { StateDeclarations, Storage } from "./function.ts";
import { type EgressMessage, message, type OutgoingMessage } from "./message.ts";
import type { Type } from "./types.ts";

export interface SendAfterOptions {
  /** Lets the message be cancelled with cancelDelayedMessage() while it is pending; unique per sender. */
  readonly cancellationToken?: string;
}

export interface Context<S extends StateDeclarations = StateDeclarations> {
  /** This instance's address. */
  readonly self: Address;
  /** The sender of the current message; undefined when it came from an ingress. */
  readonly caller: Address | undefined;
  readonly storage: Storage<S>;
  send(message: OutgoingMessage | EgressMessage): void;
  sendAfter(delayMs: number, message: OutgoingMessage, options?: SendAfterOptions): void;
  cancelDelayedMessage(cancellationToken: string): void;
  /** Sends `value` to the caller of the current message. */
  reply<T>(value: T, type?: Type<T>): void;
}

export class Effects {
  readonly outgoingMessages: Init<FromFunctionInvocation>[] = [];
  readonly delayedInvocations: Init<DelayedInvocation>[] = [];
  readonly outgoingEgresses: Init<WireEgressMessage>[] = [];
}

export class BatchContext<S extends StateDeclarations> implements Context<S> {
  readonly self: Address;
  /** The current invocation's caller as it came over the wire; made an Address only when asked for. */
  callerOnWire: WireAddress | null = null;
  #caller: Address | undefined;
  #callerOf: WireAddress | null = null;
  readonly storage: Storage<S>;
  readonly effects = new Effects();

  constructor(self: Address, storage: Storage<S>) {
    this.self = self;
    this.storage = storage;
  }

  get caller(): Address | undefined {
    const wire = this.callerOnWire;
    if (wire === null) return undefined;
    if (this.#callerOf !== wire) {
      this.#caller = Address.fromWire(wire);
      this.#callerOf = wire;
    }
    return this.#caller;
  }

  send(outgoing: OutgoingMessage | EgressMessage): void {
    if (outgoing?.kind === "message") {
      this.effects.outgoingMessages.push({ target: outgoing.target.toWire(), argument: outgoing.value });
    } else if (outgoing?.kind === "egress") {
      const slash = outgoing.egress.lastIndexOf("/");
      this.effects.outgoingEgresses.push({
        egressNamespace: outgoing.egress.slice(0, slash),
        egressType: outgoing.egress.slice(slash + 1),
        argument: outgoing.value,
      });
    } else {
      throw new TypeError(
        "send(): expected a message built by message(), egressMessage(), kafkaRecord() or kinesisRecord()",
      );
    }
  }

  sendAfter(delayMs: number, outgoing: OutgoingMessage, options?: SendAfterOptions): void {
    if (!Number.isSafeInteger(delayMs) || delayMs < 0) {
      throw new RangeError(
        `sendAfter(): the delay must be a non-negative whole number of milliseconds, got ${delayMs}`,
      );
    }
    if (outgoing?.kind !== "message") throw new TypeError("sendAfter(): expected a message built by message()");
    const token = options?.cancellationToken;
    if (token !== undefined && (typeof token !== "string" || token.length === 0)) {
      throw new TypeError("sendAfter(): a cancellation token must be a non-empty string");
    }
    const delayed: Init<DelayedInvocation> = {
      delayInMs: delayMs,
      target: outgoing.target.toWire(),
      argument: outgoing.value,
    };
    if (token !== undefined) delayed.cancellationToken = token;
    this.effects.delayedInvocations.push(delayed);
  }

  cancelDelayedMessage(cancellationToken: string): void {
    if (typeof cancellationToken !== "string" || cancellationToken.length === 0) {
      throw new TypeError("cancelDelayedMessage(): the cancellation token must be a non-empty string");
    }
    this.effects.delayedInvocations.push({ isCancellationRequest: true, cancellationToken });
  }

  reply<T>(value: T, type?: Type<T>): void {
    if (this.caller === undefined) {
      throw new Error(`reply(): the message to ${this.self} has no caller (it came from an ingress)`);
    }
    this.send(message(this.caller, value, type));
  }
}
