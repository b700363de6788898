// --admin-port and EDDY_ADMIN_PORT: a port, 0 for any, off for no listener at all, the default
// moved by --port-offset unless the flag names the port; anything else a one-line usage error.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { adminFlags, adminForThreads } from "../src/admin-flags.ts";

describe("--admin-port", () => {
  it("names the port, any free one, or none", () => {
    assert.deepEqual(adminFlags({}, undefined, {}), { port: 8093 });
    assert.deepEqual(adminFlags({}, 10, {}), { port: 8103 });
    assert.deepEqual(adminFlags({ "admin-port": "9000" }, 10, {}), { port: 9000 });
    assert.deepEqual(adminFlags({ "admin-port": "0" }, undefined, {}), { port: 0 });
    assert.deepEqual(adminFlags({}, 10, { EDDY_ADMIN_PORT: "9100" }), { port: 9110 });
    assert.equal(adminFlags({ "admin-port": "off" }, undefined, {}), undefined);
    assert.equal(adminFlags({}, 10, { EDDY_ADMIN_PORT: "off" }), undefined);
    // The flag wins over the environment, either way.
    assert.deepEqual(adminFlags({ "admin-port": "9000" }, undefined, { EDDY_ADMIN_PORT: "off" }), { port: 9000 });
  });

  it("refuses what is not a port, naming where it came from", () => {
    assert.throws(
      () => adminFlags({ "admin-port": "80x" }, undefined, {}),
      /^UsageError: --admin-port: "80x" is not a port.*, or off$/,
    );
    assert.throws(
      () => adminFlags({}, undefined, { EDDY_ADMIN_PORT: "70000" }),
      /EDDY_ADMIN_PORT: "70000" is not a port/,
    );
    assert.throws(() => adminFlags({}, 1, { EDDY_ADMIN_PORT: "65535" }), /moves the admin port 65535 to 65536/);
  });

  it("with partition threads, leaves out only the default listener; one asked for stays (and the runtime refuses it)", () => {
    const defaulted = adminFlags({}, undefined, {});
    assert.equal(adminForThreads(defaulted, {}, 2, {}), undefined);
    assert.deepEqual(adminForThreads(defaulted, {}, 1, {}), { port: 8093 }, "one thread: as always");
    const flagged = adminFlags({ "admin-port": "9000" }, undefined, {});
    assert.deepEqual(adminForThreads(flagged, { "admin-port": "9000" }, 2, {}), { port: 9000 });
    const fromEnv = adminFlags({}, undefined, { EDDY_ADMIN_PORT: "0" });
    assert.deepEqual(adminForThreads(fromEnv, {}, 2, { EDDY_ADMIN_PORT: "0" }), { port: 0 });
    assert.equal(adminForThreads(undefined, { "admin-port": "off" }, 2, {}), undefined);
  });
});
