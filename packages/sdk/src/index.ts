// @eddy/sdk: define stateful functions in TypeScript and serve them to any runtime that
// speaks the StateFun 3.x protocol (Eddy, or Apache Flink StateFun).
export { Address, address } from "./address.ts";
export type { Context, SendAfterOptions } from "./context.ts";
export {
  createEndpoint,
  Endpoint,
  InvokeError,
  type InvokeErrorCode,
  type InvokeMessageResult,
  type InvokeMultiAddressResult,
  type InvokeResult,
  MULTI_ADDRESS_CALLS_MAX,
} from "./endpoint.ts";
export {
  type AnyStatefulFunction,
  exportedFunctions,
  type FunctionOptions,
  type Handler,
  isStatefulFunction,
  type StateDeclaration,
  type StateDeclarations,
  type StatefulFunction,
  type StateOptions,
  type Storage,
  statefulFunction,
} from "./function.ts";
export {
  type EgressMessage,
  egressMessage,
  type KafkaRecordOptions,
  type KinesisRecordOptions,
  kafkaRecord,
  kinesisRecord,
  Message,
  type MessageHeader,
  message,
  type OutgoingMessage,
  type Target,
} from "./message.ts";
export { type FastifyOptions, fastifyPlugin } from "./serve/fastify.ts";
export { fetchHandler } from "./serve/fetch.ts";
export {
  type HandlerOptions,
  type NodeHandler,
  nodeHandler,
  type RunningServer,
  type ServeOptions,
  serve,
} from "./serve/node.ts";
export {
  SIGNATURE_HEADER,
  SIGNATURE_TOLERANCE_MS,
  type SignatureCheck,
  type SigningKey,
  signBody,
  verifySignature,
} from "./signature.ts";
export { type Schema, type Type, types, type ValueOf } from "./types.ts";
