// The admin client's choices made before any request: which Eddy the command line names, and
// the control socket's name, which the CLI writes out rather than load the runtime for it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CONTROL_SOCKET } from "@eddy/runtime";
import { adminClient, CONTROL_SOCKET_NAME } from "../src/admin-client.ts";
import { UsageError } from "../src/usage.ts";

describe("adminClient", () => {
  it("uses the runtime's control socket name", () => {
    assert.equal(CONTROL_SOCKET_NAME, CONTROL_SOCKET);
  });

  it("names the Eddy it reaches: the state directory's (with its process when known) or the URL", () => {
    assert.equal(adminClient({}).where, "the Eddy on eddy-state");
    assert.equal(adminClient({ "state-dir": "/srv/eddy" }, 42).where, "the Eddy on /srv/eddy (process 42)");
    assert.equal(adminClient({ admin: "http://127.0.0.1:8093/" }).where, "http://127.0.0.1:8093");
  });

  it("refuses --state-dir with --admin, a URL that is not http(s), and a token for the socket", () => {
    assert.throws(() => adminClient({ "state-dir": "x", admin: "http://h:1" }), UsageError);
    assert.throws(
      () => adminClient({ admin: "ftp://h/" }),
      /--admin ftp:\/\/h\/: expected an http:\/\/ or https:\/\/ URL/,
    );
    assert.throws(() => adminClient({ admin: "not a url" }), /--admin not a url: expected the admin listener's URL/);
    assert.throws(() => adminClient({ "token-file": "t" }), /--token-file is for --admin URL/);
  });

  it("says in one line that no Eddy runs on a state directory, naming it and --admin", async () => {
    await assert.rejects(
      adminClient({ "state-dir": "/nonexistent/eddy-state" }).call("GET", "/v1/overview"),
      /^CommandError: no Eddy runs on \/nonexistent\/eddy-state: .*--admin URL/,
    );
  });
});
