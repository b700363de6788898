// @eddy/protocol: the StateFun 3.x wire protocol. One source of truth (proto/*.proto),
// two generated codecs: `codec.ts` (protobufjs static, the hot path) and `schemas`
// (@bufbuild/protobuf, typed schemas for tools and tests). Tests pin both to golden bytes.
// `multi-address.ts` is Eddy's own optional framing of several calls in one request.
export * from "./codec.ts";
export * from "./messages.ts";
export * from "./multi-address.ts";
export * from "./normalize.ts";
export * as schemas from "./schemas.ts";
export * from "./typenames.ts";
