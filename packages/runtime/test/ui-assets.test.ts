// The web UI's files under /ui/: the app and uPlot with their content types, revalidation by
// ETag, a redirect from /ui, and nothing outside the UI's own files, however the path is spelled.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { serveUi, uiReply } from "../src/observe/ui-assets.ts";

describe("the UI's files", () => {
  it("serves the app at /ui/ and its modules, with their content types, no-cache and an ETag", async () => {
    const index = await uiReply("GET", "/ui/");
    assert.equal(index?.status, 200);
    assert.ok(index?.status === 200);
    assert.equal(index.headers["content-type"], "text/html; charset=utf-8");
    assert.equal(index.headers["cache-control"], "no-cache");
    assert.match(index.headers.etag ?? "", /^"[\w-]{22}"$/);
    assert.match(index.headers["content-security-policy"] ?? "", /frame-ancestors 'none'/);
    assert.equal(index.headers["x-content-type-options"], "nosniff");
    assert.match(index.body.toString(), /<script type="module" src="\.\/app\.js">/);
    assert.deepEqual(
      index.body,
      await uiReply("GET", "/ui/index.html").then((reply) => reply?.status === 200 && reply.body),
    );

    for (const [path, contentType] of [
      ["/ui/app.js", "text/javascript; charset=utf-8"],
      ["/ui/pages/state.js", "text/javascript; charset=utf-8"],
      ["/ui/app.css", "text/css; charset=utf-8"],
    ]) {
      const reply = await uiReply("GET", path as string);
      assert.equal(reply?.status, 200, path);
      assert.equal(reply?.status === 200 && reply.headers["content-type"], contentType, path);
    }
  });

  it("serves uPlot from its package, so the UI works offline", async () => {
    const esm = await uiReply("GET", "/ui/vendor/uPlot.esm.js");
    assert.ok(esm?.status === 200);
    assert.equal(esm.headers["content-type"], "text/javascript; charset=utf-8");
    const packaged = readFileSync(new URL(import.meta.resolve("uplot/dist/uPlot.esm.js")));
    assert.deepEqual(esm.body, packaged);
    const css = await uiReply("GET", "/ui/vendor/uPlot.min.css");
    assert.ok(css?.status === 200);
    assert.equal(css.headers["content-type"], "text/css; charset=utf-8");
  });

  it("answers 304 to a request that has the current ETag", async () => {
    const first = await uiReply("GET", "/ui/app.js");
    assert.ok(first?.status === 200);
    const etag = first.headers.etag ?? "";
    assert.equal((await uiReply("GET", "/ui/app.js", etag))?.status, 304);
    assert.equal((await uiReply("GET", "/ui/app.js", `"other", ${etag}`))?.status, 304);
    assert.equal((await uiReply("GET", "/ui/app.js", '"stale"'))?.status, 200);
  });

  it("redirects /ui to /ui/, and leaves every other path to the admin API", async () => {
    assert.deepEqual(await uiReply("GET", "/ui"), { status: 308, headers: { location: "ui/" } });
    for (const path of ["/", "/uix", "/v1/stats", "/metrics", "/ui.js"]) {
      assert.equal(await uiReply("GET", path), undefined, path);
    }
  });

  it("never serves a file outside the UI's own, however the path is spelled", async () => {
    for (const path of [
      "/ui/../package.json",
      "/ui/..%2fpackage.json",
      "/ui/%2e%2e/package.json",
      "/ui/%2e%2e%2f%2e%2e%2fpackage.json",
      "/ui/pages/../../src/observe/ui-assets.ts",
      "/ui/pages/%2e%2e%2f%2e%2e%2fsrc%2fobserve%2fui-assets.ts",
      "/ui/vendor/../../../../node_modules/uplot/package.json",
      "/ui/..%5c..%5cpackage.json",
      "/ui//etc/passwd",
      "/ui/%2fetc%2fpasswd",
      "/ui/app.js%00.html",
      "/ui/tsconfig.json",
      "/ui/vendor/uPlot.esm.d.ts",
      "/ui/vendor/uPlot.cjs.js",
      "/ui/./app.js",
    ]) {
      const reply = await uiReply("GET", path);
      assert.equal(reply?.status, 404, path);
    }
    assert.deepEqual(await uiReply("GET", "/ui/%E0%A4%A"), {
      status: 400,
      code: "bad-request",
      message: "/ui/%E0%A4%A: malformed percent-encoding",
    });
  });

  it("takes GET and HEAD only; HEAD has the headers and no body", async () => {
    assert.deepEqual(await uiReply("POST", "/ui/app.js"), {
      status: 405,
      code: "method-not-allowed",
      message: "POST /ui/app.js: the UI's files take GET and HEAD",
    });
    const server = createServer((req, res) => {
      void serveUi(req, res, (req.url ?? "/").split("?")[0] ?? "/").then((served) => {
        if (!served) res.writeHead(418).end();
      });
    });
    await new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const head = await fetch(`${base}/ui/app.css`, { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.ok(Number(head.headers.get("content-length")) > 0);
      assert.equal(await head.text(), "");
      const redirected = await fetch(`${base}/ui?x=1`, { redirect: "manual" });
      assert.equal(redirected.status, 308);
      assert.equal(redirected.headers.get("location"), "ui/");
      assert.equal((await fetch(`${base}/ui`)).url, `${base}/ui/`, "a browser follows it to /ui/");
      const posted = await fetch(`${base}/ui/`, { method: "POST" });
      assert.equal(posted.status, 405);
      assert.equal(posted.headers.get("allow"), "GET, HEAD");
      assert.equal(((await posted.json()) as { code: string }).code, "method-not-allowed");
      assert.equal((await fetch(`${base}/elsewhere`)).status, 418);
    } finally {
      server.close();
    }
  });
});
