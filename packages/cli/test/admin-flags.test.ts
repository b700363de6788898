// --admin-port and EDDY_ADMIN_PORT: a port, 0 for any, off for no listener at all, the default
// moved by --port-offset unless the flag names the port; anything else a one-line usage error.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { adminFlags } from "../src/admin-flags.ts";

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
});
