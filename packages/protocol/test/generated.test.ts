// The committed codecs must be exactly what proto/ generates today: one source of truth.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, it } from "node:test";

const packageDir = resolve(import.meta.dirname, "..");
const scratch = mkdtempSync(join(tmpdir(), "eddy-generate-check-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

it("src/gen and src/fast match a fresh `npm run generate`", () => {
  execFileSync(process.execPath, [join(packageDir, "scripts/generate.ts"), "--check", scratch], { stdio: "pipe" });
  for (const folder of ["gen", "fast"]) {
    const fresh = readdirSync(join(scratch, "src", folder)).sort();
    const committed = readdirSync(join(packageDir, "src", folder))
      .filter((name) => fresh.includes(name) || !name.endsWith(".ts"))
      .sort();
    assert.deepEqual(committed, fresh, `files in src/${folder}`);
    for (const name of fresh) {
      const expected = readFileSync(join(scratch, "src", folder, name), "utf8");
      assert.equal(
        readFileSync(join(packageDir, "src", folder, name), "utf8"),
        expected,
        `src/${folder}/${name} is stale: run npm run generate`,
      );
    }
  }
});
