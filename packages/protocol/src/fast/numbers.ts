// Makes the protobufjs runtime read 64-bit integers (delay_in_ms, expire_after_millis)
// as plain numbers instead of Long objects. protobufjs 8 ignores pbjs --force-number, so
// this must run before wire.js loads: codec.ts imports it first, and ESM evaluates in order.
// Every StateFun int64 is a millisecond count, far below 2^53.
import $protobuf from "protobufjs/minimal.js";

$protobuf.util.Long = undefined as unknown as typeof $protobuf.util.Long;
$protobuf.configure();
