// bench/ui-scale's browser part: the web UI (/ui/) in Debian's chromium, driven by playwright-core
// as test/e2e/ui.test.ts drives it, against the runtime holding the instances. Each round opens
// a fresh page and times what a person waits for on the state page:
//   load     /ui/#/state/<type> until the first page of ids is listed;
//   prefix   typing a prefix into the id box until the list shows the ids that start with it
//            (the UI waits SEARCH_DELAY_MS = 150 ms after the last key before it asks);
//   open     clicking an id until the address's state is shown.
// Skipped, with the reason, when playwright-core or the browser ($EDDY_CHROMIUM, else
// /usr/bin/chromium; scripts/ensure-browser.sh installs it) is not there.
import { existsSync } from "node:fs";

export interface BrowserTimings {
  readonly browser: string;
  readonly rounds: number;
  /** Milliseconds, one per round, for each step. */
  readonly loadMs: readonly number[];
  readonly prefixMs: readonly number[];
  readonly openMs: readonly number[];
}

export type BrowserResult =
  | ({ readonly skipped: false } & BrowserTimings)
  | { readonly skipped: true; readonly reason: string };

export interface BrowserPlan {
  readonly adminUrl: string;
  readonly typename: string;
  /** What is typed into the id box; `id` must be among the ids listed for it. */
  readonly prefix: string;
  readonly id: string;
  /** The text the address's `visits` state shows. */
  readonly visits: string;
  readonly rounds: number;
  /**
   * Told, for every request the page sends and every response it receives, its path and when
   * (ms since its round began); `status` is undefined for a request.
   */
  readonly trace?: (round: number, path: string, status: number | undefined, atMs: number) => void;
}

export async function timeUiInBrowser(plan: BrowserPlan): Promise<BrowserResult> {
  const executablePath = process.env.EDDY_CHROMIUM ?? "/usr/bin/chromium";
  if (!existsSync(executablePath)) {
    return { skipped: true, reason: `no browser at ${executablePath} (scripts/ensure-browser.sh installs chromium)` };
  }
  let playwright: typeof import("playwright-core");
  try {
    playwright = await import("playwright-core");
  } catch (error) {
    return { skipped: true, reason: `playwright-core cannot be loaded: ${(error as Error).message}` };
  }
  let browser: import("playwright-core").Browser;
  try {
    browser = await playwright.chromium.launch({ executablePath });
  } catch (error) {
    return { skipped: true, reason: `${executablePath} does not start: ${(error as Error).message.split("\n")[0]}` };
  }
  const loadMs: number[] = [];
  const prefixMs: number[] = [];
  const openMs: number[] = [];
  try {
    for (let round = 0; round < plan.rounds; round++) {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      page.setDefaultTimeout(30_000);
      const roundStarted = performance.now();
      if (plan.trace !== undefined) {
        const trace = plan.trace;
        const path = (url: string) => `${new URL(url).pathname}${new URL(url).search}`;
        page.on("request", (request) => trace(round, path(request.url()), undefined, performance.now() - roundStarted));
        page.on("response", (response) =>
          trace(round, path(response.url()), response.status(), performance.now() - roundStarted),
        );
      }
      try {
        let started = performance.now();
        await page.goto(`${plan.adminUrl}ui/#/state/${plan.typename}`);
        await page.locator("ul.ids button[data-id]").first().waitFor();
        loadMs.push(performance.now() - started);

        started = performance.now();
        await page.fill("#state-id", plan.prefix);
        const listed = page.locator(`ul.ids button[data-id="${plan.id}"]`);
        await listed.waitFor();
        prefixMs.push(performance.now() - started);

        started = performance.now();
        await listed.click();
        await page
          .locator(`section.address[data-address="${plan.typename}/${plan.id}"] tr[data-state="visits"] pre.value`)
          .filter({ hasText: new RegExp(`^\\s*${plan.visits}\\s*$`) })
          .waitFor();
        openMs.push(performance.now() - started);
      } finally {
        await page.close();
      }
    }
  } finally {
    await browser.close();
  }
  return { skipped: false, browser: executablePath, rounds: plan.rounds, loadMs, prefixMs, openMs };
}
