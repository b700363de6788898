// The web UI in a real browser (Debian's chromium, driven by playwright-core) against `eddy run`
// with the greeter under load: the overview's charts show numbers that are not zero and move; the
// state browser finds example/person/seth and its visit count, and an edit made there is what the
// function sees next; a dead letter of a failing function is shown, replayed from the UI once the
// function is healed, and delivered. Every page is screenshotted into test-output/ui (not
// committed) for a person to look at; EDDY_UI_SCREENSHOT_DOCS=1 also writes docs/ui-overview.png.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, serve, statefulFunction, types } from "@eddy/sdk";
import { type Browser, chromium, type Page } from "playwright-core";
import { greeter, person } from "../../examples/greeter/functions.ts";
import { freePort } from "../support/ports.ts";
import { EddyProcess, playgroundYaml } from "./smoke/cluster.ts";

const root = resolve(import.meta.dirname, "../..");
const screenshots = join(root, "test-output/ui");
const TOKEN = "ui-test-token";
/** The load stops by itself after this, whatever the test does. */
const LOAD_MS_MAX = 60_000;
const LOAD_CONCURRENCY = 4;

/** The function that fails until the test heals it; what it was given once healed. */
const flaky = { healed: false, delivered: [] as string[] };
const flakyFunction = statefulFunction({
  typename: "chaos/flaky",
  handle(_ctx, msg) {
    const text = msg.as(types.string);
    if (!flaky.healed) throw new Error(`not healed yet, refusing "${text}"`);
    flaky.delivered.push(text);
  },
});

/** Greets `example/person/visitor-N` from a few loops until `stop()` or LOAD_MS_MAX. */
function startLoad(eddy: EddyProcess): { stop(): Promise<number> } {
  const deadline = Date.now() + LOAD_MS_MAX;
  let stopped = false;
  let sent = 0;
  const loop = async (worker: number) => {
    for (let i = 0; !stopped && Date.now() < deadline; i++) {
      const name = `visitor-${worker}-${i % 50}`;
      const response = await fetch(`${eddy.ingressUrl()}example/person/${name}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/vnd.example/GreetRequest" },
        body: JSON.stringify({ name }),
      }).catch(() => undefined);
      await response?.arrayBuffer();
      sent++;
      // ~100 requests/s per loop: steady numbers that do not drown the machine running the suite.
      await sleep(10);
    }
  };
  const loops = Array.from({ length: LOAD_CONCURRENCY }, (_, worker) => loop(worker));
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return sent;
    },
  };
}

async function greet(eddy: EddyProcess, name: string, wait = false): Promise<string> {
  const response = await fetch(`${eddy.ingressUrl()}example/person/${name}`, {
    method: "PUT",
    headers: {
      authorization: `Bearer ${TOKEN}`,
      "content-type": "application/vnd.example/GreetRequest",
      ...(wait ? { prefer: "wait=10" } : {}),
    },
    body: JSON.stringify({ name }),
  });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return text;
}

/** The number at the start of `text` ("1,234/s" → 1234); NaN when there is none. */
function leadingNumber(text: string | null): number {
  const match = /^-?[\d,.]+/.exec((text ?? "").trim());
  return match === null ? Number.NaN : Number(match[0].replaceAll(",", ""));
}

/** Waits (up to 10 s) until `condition` holds. */
async function eventually(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (const deadline = Date.now() + 10_000; !(await condition()); await sleep(100)) {
    if (Date.now() > deadline) throw new Error(`not within 10 s: ${what}`);
  }
}

/**
 * Clicks the id in the state page's list until the address it names is open (three tries). In
 * one CI run the address stayed closed for 10 s after the click, with the list shown and no
 * error from the browser or Eddy; the suspect (not confirmed) is a click landing while
 * Chromium's suggestion popup of the type field (its datalist) was open, which a click only
 * closes, for a person as for the test. A failure now also prints the page's text.
 */
async function openFromList(page: Page, id: string, opened: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await page.locator(`ul.ids button[data-id="${id}"]`).click();
    try {
      await page.locator(opened).waitFor({ timeout: 3000 });
      return;
    } catch (error) {
      if (attempt === 3) throw error;
      console.log(`# clicking ${id} in the list did not open it (attempt ${attempt}); clicking again`);
    }
  }
}

async function shoot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });
}

describe("the web UI in a browser", { timeout: 120_000 }, () => {
  let functions: Awaited<ReturnType<typeof serve>>;
  let eddy: EddyProcess;
  let browser: Browser;
  let page: Page;
  let load: { stop(): Promise<number> } | undefined;
  let adminUrl: string;
  const browserErrors: string[] = [];

  before(async () => {
    mkdirSync(screenshots, { recursive: true });
    functions = await serve(createEndpoint([person, greeter, flakyFunction]), { port: 0 });
    const adminPort = await freePort();
    adminUrl = `http://127.0.0.1:${adminPort}/`;
    eddy = new EddyProcess({
      moduleYaml: `kind: io.statefun.endpoints.v2/http
spec:
  functions: example/*
  urlPathTemplate: ${functions.url}{function.name}
---
kind: io.statefun.endpoints.v2/http
spec:
  functions: chaos/*
  urlPathTemplate: ${functions.url}{function.name}
  transport:
    call: 500ms
---
${playgroundYaml(["greetings"])}`,
      args: [
        "run",
        "{{MODULE}}",
        "--state-dir",
        "{{STATE_DIR}}",
        "--failure-policy",
        "dead-letter",
        "--admin-port",
        String(adminPort),
        "--token-file",
        "{{DIR}}/token",
        "--checkpoints",
        "file://{{DIR}}/checkpoints",
        "--checkpoint-interval",
        "0",
      ],
    });
    writeFileSync(join(eddy.dir, "token"), TOKEN);
    const [launched] = await Promise.all([
      chromium.launch({ executablePath: process.env.EDDY_CHROMIUM ?? "/usr/bin/chromium" }),
      eddy.start(),
    ]);
    browser = launched;
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    // Everything here shows within a second or two; a step that breaks fails soon, not in 30 s.
    page.setDefaultTimeout(10_000);
    page.on("pageerror", (error) => browserErrors.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      // Chromium logs every refused request; the 401s before the token is given are expected.
      if (message.type() === "error" && !/status of 401/.test(message.text())) {
        browserErrors.push(`console: ${message.text()}`);
      }
    });

    // Each visit answered (request-reply): the state page then has nothing to wait for but itself.
    for (let visit = 0; visit < 3; visit++) await greet(eddy, "seth", true);
    const sent = await fetch(`${eddy.ingressUrl()}chaos/flaky/x`, {
      method: "PUT",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "text/plain" },
      body: "hello flaky",
    });
    assert.equal(sent.status, 200, await sent.text());
    load = startLoad(eddy);
    console.log(`# screenshots of the UI: ${screenshots}`);
  });

  after(async () => {
    await load?.stop();
    await browser?.close();
    // A clean stop, then the deployment's directory (state, checkpoints, token) is removed.
    await eddy?.stop();
    await eddy?.dispose();
    functions?.close();
  });

  /** Fails with what the browser and Eddy said, not only the assertion. */
  const explained = async (work: () => Promise<void>) => {
    try {
      await work();
    } catch (error) {
      await shoot(page, "failure").catch(() => undefined);
      const shown = await page
        .locator("main")
        // biome-ignore lint/performance/useDomNodeTextContent: the page as a person reads it, line by line
        .innerText({ timeout: 1000 })
        .catch((reason: unknown) => `(unreadable: ${String(reason)})`);
      throw new Error(
        `${error instanceof Error ? error.message : String(error)}\n--- page ${page.url()} ---\n${shown.slice(0, 3000)}\n--- browser ---\n${browserErrors.join("\n")}\n--- eddy ---\n${eddy.output.slice(-3000)}`,
        { cause: error },
      );
    }
  };

  it("asks for the token, then the overview's charts show non-zero numbers that change", () =>
    explained(async () => {
      await page.goto(`${adminUrl}ui`);
      assert.ok(page.url().startsWith(`${adminUrl}ui/#`), `/ui redirects to /ui/, at ${page.url()}`);
      // Opening the page needs no token; the API does: the app asks for it.
      await page.locator("#token-dialog").waitFor({ state: "visible" });
      await page.fill("#token-input", TOKEN);
      await page.click("#token-dialog button[type=submit]");

      const rate = page.locator('[data-chart="messages"] .now');
      const handled = page.locator('[data-tile="invocations"] .value');
      await eventually(async () => leadingNumber(await rate.textContent()) > 0, "messages/s above zero");
      const first = { rate: await rate.textContent(), handled: leadingNumber(await handled.textContent()) };
      // A few more samples: the lines have some length in the screenshot, and the numbers moved.
      await sleep(4000);
      const second = { rate: await rate.textContent(), handled: leadingNumber(await handled.textContent()) };
      assert.ok(leadingNumber(second.rate) > 0, `messages/s ${second.rate}`);
      assert.ok(second.handled > first.handled, `messages handled ${first.handled} → ${second.handled}`);
      const io = await page.locator('[data-chart="io"] .now').textContent();
      assert.ok(leadingNumber(io) > 0, `ingress/egress: ${io}`);
      // Every chart drew its canvas, and the latency charts have numbers.
      assert.equal(await page.locator(".chart canvas").count(), await page.locator(".chart").count());
      assert.match((await page.locator('[data-chart="latency"] .now').textContent()) ?? "", /p99 ≤ [\d.]+ (ms|s)/);
      await shoot(page, "overview");
      if (process.env.EDDY_UI_SCREENSHOT_DOCS === "1") {
        // The README's picture: some history in the charts, the legend without a cursor.
        await sleep(20_000);
        await page.screenshot({ path: join(root, "docs/ui-overview.png") });
        console.log(`# wrote ${join(root, "docs/ui-overview.png")}`);
      }
    }));

  it("lists the function types with their health, and pauses and resumes one", () =>
    explained(async () => {
      await page.click('nav a[data-page="functions"]');
      await page.locator('tr[data-typename="example/person"] .badge.ok').waitFor();
      await page.locator('tr[data-typename="chaos/flaky"] .badge.failing').waitFor();
      assert.match(
        (await page.locator('tr[data-typename="chaos/flaky"]').textContent()) ?? "",
        /not healed yet/,
        "the failing type shows its last error",
      );
      await shoot(page, "functions");
      const flakyRow = page.locator('tr[data-typename="chaos/flaky"]');
      await flakyRow.locator('button:text-is("Pause")').click();
      await flakyRow.locator(".badge.paused").waitFor();
      await flakyRow.locator('button:text-is("Resume")').click();
      await flakyRow.locator(".badge.failing").waitFor();
    }));

  it("finds example/person/seth, shows its visits, and an edit there is what the function sees next", () =>
    explained(async () => {
      await page.click('nav a[data-page="state"]');
      await page.fill("#state-type", "example/person");
      await page.fill("#state-id", "se");
      await openFromList(page, "seth", 'section.address[data-address="example/person/seth"]');
      const visits = page.locator('tr[data-state="visits"] pre.value');
      await visits.filter({ hasText: /^\s*3\s*$/ }).waitFor();
      assert.equal((await visits.textContent())?.trim(), "3");
      assert.match(page.url(), /#\/state\/example\/person\/seth$/);
      await shoot(page, "state");

      await page.click('tr[data-state="visits"] button:text-is("Edit")');
      await page.fill('tr[data-state="visits"] textarea', "41");
      await page.click('tr[data-state="visits"] button:text-is("Save")');
      await visits.filter({ hasText: /^\s*41\s*$/ }).waitFor();
      // The write is durable before its answer: the next visit is the 42nd.
      assert.equal(await greet(eddy, "seth", true), "Happy to see you once again, seth! (visit 42)");
      await visits.filter({ hasText: /^\s*42\s*$/ }).waitFor();
      await shoot(page, "state-edited");
    }));

  it("shows the dead letter of the failing function, and replays it from the UI once the function is healed", () =>
    explained(async () => {
      await page.click('nav a[data-page="dead-letters"]');
      const row = page.locator("tr[data-letter]", { hasText: "chaos/flaky/x" });
      await row.waitFor();
      assert.match((await row.textContent()) ?? "", /not healed yet/);
      await row.locator("button.link").click();
      await page.locator(".detail .message pre", { hasText: "hello flaky" }).waitFor();
      await shoot(page, "dead-letters");

      flaky.healed = true;
      await row.locator('button:text-is("Replay")').click();
      await page.locator("#toast", { hasText: "Replayed 1 dead letter" }).waitFor();
      for (let waited = 0; flaky.delivered.length === 0 && waited < 10_000; waited += 50) await sleep(50);
      assert.deepEqual(flaky.delivered, ["hello flaky"]);
      await row.waitFor({ state: "detached" });
      await shoot(page, "dead-letters-replayed");
    }));

  it("takes a checkpoint and a savepoint, and lists them", () =>
    explained(async () => {
      const sent = await load?.stop();
      load = undefined;
      assert.ok((sent ?? 0) > 0);
      await page.click('nav a[data-page="checkpoints"]');
      await page.click('button:text-is("Take a checkpoint now")');
      await page.locator("tr[data-checkpoint]").first().waitFor();
      await page.fill('input[placeholder="savepoint name"]', "before-upgrade");
      await page.click('button:text-is("Take a savepoint")');
      await page.locator("tr[data-checkpoint]", { hasText: "before-upgrade" }).waitFor();
      await shoot(page, "checkpoints");
      assert.deepEqual(browserErrors, [], "the browser reported no errors");
    }));
});
