// @eddy/sdk/testing: unit-test a function with no runtime and no HTTP.
export * from "./harness.ts";
