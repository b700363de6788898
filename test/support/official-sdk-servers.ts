// The function servers written with the official StateFun Go and Java SDKs
// (test/e2e/official-sdks/{go,java}), as scripts/ensure-official-sdks.sh builds them into
// .tools/official-sdks/<sdk>/server: each takes a port (0: any) and prints the one it bound.
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { type PortPrintingServer, startPortPrintingServer } from "./port-printing-server.ts";

const root = resolve(import.meta.dirname, "../..");

/** A first build fetches the SDKs and compiles (about a minute); a ready build answers at once. */
const ENSURE_TIMEOUT_MS = 10 * 60_000;

export type OfficialSdk = "go" | "java";

/** Runs scripts/ensure-official-sdks.sh (idempotent); throws with the reason if a build fails. */
export function ensureOfficialSdks(): void {
  const ensure = spawnSync("sh", [resolve(root, "scripts/ensure-official-sdks.sh")], {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit"],
    timeout: ENSURE_TIMEOUT_MS,
  });
  if (ensure.error !== undefined) throw new Error(`scripts/ensure-official-sdks.sh: ${ensure.error.message}`);
  if (ensure.status !== 0) throw new Error(`scripts/ensure-official-sdks.sh failed (exit ${ensure.status})`);
}

/** Starts the `sdk` function server on a free port of 127.0.0.1 (ensureOfficialSdks() first). */
export function startOfficialSdkServer(sdk: OfficialSdk): Promise<PortPrintingServer> {
  ensureOfficialSdks();
  return startPortPrintingServer(resolve(root, ".tools/official-sdks", sdk, "server"), ["0"], {
    name: `the ${sdk} SDK functions`,
  });
}
