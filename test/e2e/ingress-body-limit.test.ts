// The HTTP ingress's body limit: 4 MiB unless --ingress-body-limit says otherwise (at most
// the 32 MiB a function call may carry). A larger body gets 413 naming the limit and the
// flag; the flag raised, the same body is accepted; a nonsense value is a usage error.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EddyProcess, greeterDevArgs, playgroundYaml, runEddyCommand, withEddy } from "./smoke/cluster.ts";

/** A GreetRequest of about 5 MiB: over the default limit, under 8 MiB. */
const bigRequest = JSON.stringify({ name: "x".repeat(5 * 1024 * 1024) });

async function sendBig(eddy: EddyProcess): Promise<{ status: number; text: string }> {
  const response = await fetch(`${eddy.ingressUrl()}example/person/big`, {
    method: "PUT",
    headers: { "content-type": "application/vnd.example/GreetRequest" },
    body: bigRequest,
  });
  return { status: response.status, text: await response.text() };
}

describe("eddy dev --ingress-body-limit", { timeout: 60_000 }, () => {
  it("a body over the default 4 MiB gets 413 naming the limit and the flag", async () => {
    const eddy = new EddyProcess({ moduleYaml: playgroundYaml(["greetings"]), args: greeterDevArgs() });
    await withEddy(eddy, async () => {
      await eddy.start();
      const refused = await sendBig(eddy);
      assert.equal(refused.status, 413, refused.text);
      assert.equal(refused.text.trim(), "request body larger than 4 MiB (--ingress-body-limit)");
    });
  });

  it("with the limit raised to 8MiB the same body is accepted", async () => {
    const eddy = new EddyProcess({
      moduleYaml: playgroundYaml(["greetings"]),
      args: greeterDevArgs("--ingress-body-limit", "8MiB"),
    });
    await withEddy(eddy, async () => {
      await eddy.start();
      const accepted = await sendBig(eddy);
      assert.equal(accepted.status, 200, accepted.text);
    });
  });

  it("refuses a limit that is no size, or more than a function call carries, as a usage error", async () => {
    for (const [value, expected] of [
      ["lots", /--ingress-body-limit: "lots" is not a size/],
      ["0", /--ingress-body-limit: "0" is not a size/],
      ["64MiB", /--ingress-body-limit: "64MiB" is over 32MiB, the most a function call carries/],
    ] as const) {
      for (const command of [
        ["run", "module.yaml"],
        ["dev", "examples/greeter/functions.ts", "--module", "module.yaml"],
      ]) {
        const result = await runEddyCommand([...command, "--ingress-body-limit", value]);
        assert.equal(result.status, 2, result.stderr);
        assert.match(result.stderr.split("\n")[0] as string, expected);
      }
    }
  });
});
