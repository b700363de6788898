// Every official StateFun SDK against the real `eddy run`, installed from its own registry:
// Go (statefun-sdk-go v3.3.0, Go module proxy) and Java (statefun-sdk-java 3.3.0, Maven
// Central) as scripts/ensure-official-sdks.sh builds them, Python (apache-flink-statefun
// 3.3.0, PyPI) and JS (apache-flink-statefun 3.3.0, npm). Each serves the same two functions
// (test/e2e/official-sdks/): a greeter answers through request-reply, and a counter is asked
// in order across kill -9 of the runtime, every request applied exactly once.
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { startOfficialSdkServer } from "../support/official-sdk-servers.ts";
import type { PortPrintingServer } from "../support/port-printing-server.ts";
import { startPythonServer } from "../support/python-server.ts";
import { serveJsSdkFunctions } from "./official-sdks/js-functions.ts";
import { countAcrossKills } from "./request-reply/across-kills.ts";
import { EddyProcess, playgroundYaml } from "./smoke/cluster.ts";

const root = resolve(import.meta.dirname, "../..");

/** Each SDK's functions are <namespace>/greeter and <namespace>/counter. */
const SDKS = [
  { name: "Go", namespace: "go" },
  { name: "Java", namespace: "java" },
  { name: "Python", namespace: "py" },
  { name: "JS", namespace: "js" },
] as const;

describe("the official StateFun SDKs against eddy run", { timeout: 300_000 }, () => {
  let eddy: EddyProcess;
  const servers: PortPrintingServer[] = [];
  let js: { url: string; close(): void } | undefined;

  before(async () => {
    const [go, java, python] = await Promise.all([
      startOfficialSdkServer("go"),
      startOfficialSdkServer("java"),
      startPythonServer(resolve(root, "packages/sdk/test/interop/python/server.py"), {
        args: ["0", resolve(import.meta.dirname, "official-sdks/python")],
      }),
    ]);
    servers.push(go, java, python);
    js = await serveJsSdkFunctions();
    const urls: Record<(typeof SDKS)[number]["namespace"], string> = {
      go: go.url,
      java: java.url,
      py: python.url,
      js: js.url,
    };
    const endpoints = SDKS.map(
      ({ namespace }) =>
        `kind: io.statefun.endpoints.v2/http\nspec:\n  functions: ${namespace}/*\n  urlPathTemplate: ${urls[namespace]}\n---\n`,
    );
    eddy = new EddyProcess({
      moduleYaml: `${endpoints.join("")}${playgroundYaml(["unused"])}`,
      args: ["run", "{{MODULE}}", "--state-dir", "{{STATE_DIR}}"],
    });
    await eddy.start();
  });

  after(async () => {
    await eddy?.dispose();
    await Promise.all(servers.map((server) => server.close()));
    js?.close();
  });

  /** What a test failure shows: the end of Eddy's output and of the function servers' stderr. */
  const diagnostics = () =>
    [
      `--- eddy ---\n${eddy.output.slice(-3000)}`,
      ...servers.map((server) => `--- ${server.url} ---\n${server.log().slice(-1000)}`),
    ].join("\n");

  for (const { name, namespace } of SDKS) {
    it(`${name} SDK: the greeter answers through request-reply, its visits kept in state`, async () => {
      const replies: string[] = [];
      for (let visit = 0; visit < 3; visit++) {
        const response = await fetch(`${eddy.ingressUrl()}${namespace}/greeter/x`, {
          method: "POST",
          headers: { prefer: "wait=10" },
          body: "hi",
        });
        replies.push(`${response.status} ${await response.text()}`);
      }
      assert.deepEqual(replies, ["200 Welcome x!", "200 Welcome back x!", "200 Welcome back x!"], diagnostics());
    });

    it(`${name} SDK: the counter applies each request once and answers its retries the same across kill -9 of the runtime`, async () => {
      const answers = await countAcrossKills(eddy, { path: `${namespace}/counter/crash`, keyPrefix: namespace });
      assert.ok(answers.length >= 20, diagnostics());
      assert.deepEqual(
        answers,
        Array.from({ length: answers.length }, (_, index) => String(index + 1)),
        diagnostics(),
      );
    });
  }
});
