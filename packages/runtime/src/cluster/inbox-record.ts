// A message on its way to a partition run by another worker: the value of one record of the
// cluster's inbox topic (`eddy.<name>.inbox`, partition = the target's partition). Written by
// the sender's commit, inside its Kafka transaction; read by the owner, which delivers it and
// commits the inbox position with its effects. The record's key is the target's address key,
// for people reading the topic; the partition says where it goes.
//
// The value is a msgpack array with a version first, fields by position (a record per hop:
// field names would be most of it). A value that does not decode is a Failure, never a throw:
// the topic is Eddy's own, but a broken record must stop its partition with a clear error,
// not crash the worker. A message that travels in a trace (tracing on) has an eleventh field,
// its traceparent; without one the record is as it always was.
import type { MessageHeader, TypedValue } from "@eddy/protocol";
import { Packr } from "msgpackr";
import { type Address, addressKey, type FunctionTypename } from "../core/address.ts";
import type { InboxMessage } from "../core/partition-set.ts";
import type { Envelope } from "../core/records.ts";
import { failure, type Result, success } from "../errors.ts";

export const INBOX_RECORD_VERSION = 1;

export type { InboxMessage };

const packr = new Packr({ useRecords: false });

export function inboxRecordKey(message: InboxMessage): Buffer {
  return Buffer.from(addressKey(message.envelope.target));
}

export function encodeInboxRecord(message: InboxMessage): Buffer {
  const { target, caller, argument, headers, trace } = message.envelope;
  const fields = [
    INBOX_RECORD_VERSION,
    target.typename,
    target.id,
    caller === undefined ? null : caller.typename,
    caller === undefined ? null : caller.id,
    argument.typename,
    argument.hasValue,
    argument.value,
    headers === undefined || headers.length === 0 ? null : headers.map((header) => [header.key, header.value]),
    message.idempotencyKey ?? null,
  ];
  if (trace !== undefined) fields.push(trace);
  return packr.pack(fields);
}

export function decodeInboxRecord(bytes: Uint8Array): Result<InboxMessage, "inbox-record-malformed"> {
  let fields: unknown;
  try {
    fields = packr.unpack(bytes);
  } catch (error) {
    return malformed(`not msgpack (${error instanceof Error ? error.message : String(error)})`);
  }
  if (!Array.isArray(fields) || (fields.length !== 10 && fields.length !== 11)) {
    return malformed("not an array of 10 or 11 fields");
  }
  const [version, targetType, targetId, callerType, callerId, typename, hasValue, value, headers, key, trace] = fields;
  if (version !== INBOX_RECORD_VERSION)
    return malformed(`version ${String(version)}, this Eddy reads ${INBOX_RECORD_VERSION}`);
  if (typeof targetType !== "string" || typeof targetId !== "string") return malformed("no target address");
  if ((callerType === null) !== (callerId === null)) return malformed("half a caller address");
  if (callerType !== null && (typeof callerType !== "string" || typeof callerId !== "string")) {
    return malformed("a caller address that is not two strings");
  }
  if (typeof typename !== "string" || typeof hasValue !== "boolean" || !(value instanceof Uint8Array)) {
    return malformed("no typed argument");
  }
  if (key !== null && typeof key !== "string") return malformed("an idempotency key that is not a string");
  if (trace !== undefined && typeof trace !== "string") return malformed("a trace context that is not a string");
  let decodedHeaders: MessageHeader[] | undefined;
  if (headers !== null) {
    if (!Array.isArray(headers)) return malformed("headers that are not a list");
    decodedHeaders = [];
    for (const header of headers) {
      if (
        !Array.isArray(header) ||
        typeof header[0] !== "string" ||
        !(header[1] === null || header[1] instanceof Uint8Array)
      ) {
        return malformed("a header that is not a key and bytes");
      }
      decodedHeaders.push({ key: header[0], value: header[1] === null ? null : copy(header[1] as Uint8Array) });
    }
  }
  const target: Address = { typename: targetType as FunctionTypename, id: targetId };
  const argument: TypedValue = { typename, hasValue, value: copy(value) };
  const envelope: Envelope = {
    target,
    ...(callerType === null ? {} : { caller: { typename: callerType as FunctionTypename, id: callerId as string } }),
    argument,
    ...(decodedHeaders === undefined ? {} : { headers: decodedHeaders }),
    ...(trace === undefined ? {} : { trace }),
  };
  return success(key === null ? { envelope } : { envelope, idempotencyKey: key });
}

/**
 * Bytes of their own: msgpack hands out views of the record's bytes, which are a view of a
 * whole fetch response; a message that waits in a backlog must not keep that alive.
 */
function copy(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

function malformed(why: string): Result<InboxMessage, "inbox-record-malformed"> {
  return failure("inbox-record-malformed", `inbox record: ${why}`, false);
}
