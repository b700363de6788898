// One contract for every blob store checkpoints can go to: a directory, S3 (against a real
// versitygw) and Google Cloud Storage (against fake-gcs-server). Whole objects round-trip
// byte for byte, listings page past 1000 keys and stay inside the store's prefix, deletes
// ignore missing keys, bad URLs are error values, and a failing server is a BlobStoreError
// that names the store and the key.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { startGcsServer, startS3Server } from "../../../test/support/blob-servers.ts";
import { type BlobStore, BlobStoreError } from "../src/checkpoint/blob/blob-store.ts";
import { openBlobStore } from "../src/checkpoint/blob/open-blob-store.ts";

const MiB = 1024 * 1024;
/** More than one page of an S3 or GCS listing (1000 keys). */
const MANY_KEYS = 1100;
const PUT_CONCURRENCY = 32;

/** Where one implementation keeps its objects while the suite runs. */
interface Backend {
  /** The store URL for `prefix` ("" for the whole bucket or directory). */
  url(prefix: string): string;
  /** URLs openBlobStore must refuse, each with a part of the error it must give. */
  readonly badUrls: readonly (readonly [url: string, expected: RegExp])[];
  stop(): Promise<void>;
}

const implementations: readonly {
  name: string;
  start(): Promise<Backend>;
  /** A store URL whose operations fail (a stopped server); a directory has no such thing. */
  stoppedUrl?: () => Promise<string>;
}[] = [
  {
    name: "directory",
    async start() {
      const root = mkdtempSync(join(tmpdir(), "eddy-blob-"));
      return {
        url: (prefix) => pathToFileURL(join(root, prefix)).href,
        badUrls: [["file://host/dir", /names no host/]],
        stop: async () => rmSync(root, { recursive: true, force: true }),
      };
    },
  },
  {
    name: "S3 (versitygw)",
    async stoppedUrl() {
      const stopped = await startS3Server();
      await stopped.stop();
      return stopped.url;
    },
    async start() {
      const server = await startS3Server();
      const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
      Object.assign(process.env, server.env);
      return {
        url: (prefix) => `s3://${server.bucket}/${prefix}?endpoint=${server.endpoint}&region=us-east-1`,
        badUrls: [
          [
            `s3://bucket/p?endpoint=${server.endpoint}&colour=blue&flavour=x`,
            /unknown query parameters colour, flavour/,
          ],
          ["s3:///prefix?region=us-east-1", /names no bucket/],
          ["s3://bucket/p?endpoint=ftp://127.0.0.1:21", /endpoint "ftp:\/\/127.0.0.1:21": scheme ftp:/],
          ["s3://bucket/p?endpoint=127.0.0.1:9000", /endpoint "127.0.0.1:9000"/],
          ["s3://bucket/p?path-style=maybe", /path-style "maybe": expected true or false/],
          ["s3://bucket:9000/p", /has no port/],
          ["s3://key:secret@bucket/p", /credentials do not belong in the URL/],
          ["s3://bucket/a//b", /non-empty parts/],
        ],
        async stop() {
          await server.stop();
          for (const [name, value] of [
            ["AWS_ACCESS_KEY_ID", saved.id],
            ["AWS_SECRET_ACCESS_KEY", saved.secret],
          ] as const) {
            if (value === undefined) delete process.env[name];
            else process.env[name] = value;
          }
        },
      };
    },
  },
  {
    name: "GCS (fake-gcs-server)",
    async stoppedUrl() {
      const stopped = await startGcsServer();
      await stopped.stop();
      return stopped.url;
    },
    async start() {
      const server = await startGcsServer();
      return {
        url: (prefix) => `gs://${server.bucket}/${prefix}?endpoint=${server.endpoint}`,
        badUrls: [
          [`gs://bucket/p?endpoint=${server.endpoint}&region=x`, /unknown query parameter region/],
          ["gs:///prefix", /names no bucket/],
          ["gs://bucket/p?endpoint=ftp://127.0.0.1:21", /endpoint "ftp:\/\/127.0.0.1:21": scheme ftp:/],
          ["gs://bucket/p?endpoint=not%20a%20url", /endpoint "not a url": not a URL/],
          ["gs://Bucket/p", /is not a bucket name/],
        ],
        stop: () => server.stop(),
      };
    },
  },
];

async function openStore(url: string): Promise<BlobStore> {
  const result = await openBlobStore(url);
  if (!result.ok) assert.fail(`opening ${url}: ${result.error}`);
  return result.store;
}

/** Runs `task` on every item, at most `limit` at a time. */
async function eachLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

const sorted = (keys: readonly string[]) => [...keys].sort();
/** An object's bytes as a plain array: stores may return a Buffer or a bare Uint8Array. */
const bytes = (body: Uint8Array | undefined) => (body === undefined ? undefined : [...body]);

for (const implementation of implementations) {
  describe(`${implementation.name} blob store`, () => {
    let backend: Backend;
    const stores: BlobStore[] = [];
    /** A store of its own for each test, so tests share the server but not their keys. */
    const store = async (prefix: string) => {
      const blobs = await openStore(backend.url(prefix));
      stores.push(blobs);
      return blobs;
    };

    before(async () => {
      backend = await implementation.start();
    });
    after(async () => {
      for (const each of stores) await each.close();
      await backend?.stop();
    });

    it("returns empty, small and 20 MiB objects byte for byte", async () => {
      const blobs = await store("round-trip");
      const bodies = {
        empty: new Uint8Array(0),
        "small.json": new TextEncoder().encode('{"hello":"world"}'),
        "data/part-0/large.bin": randomBytes(20 * MiB),
      };
      for (const [key, body] of Object.entries(bodies)) await blobs.put(key, body);
      for (const [key, body] of Object.entries(bodies)) {
        const read = await blobs.get(key);
        assert.ok(read instanceof Uint8Array, `${key}: expected bytes, got ${read}`);
        assert.equal(read.byteLength, body.byteLength, key);
        assert.ok(Buffer.from(read).equals(body), `${key}: the bytes read differ from the bytes written`);
      }
    });

    it("gets undefined for a key with no object", async () => {
      const blobs = await store("missing");
      assert.equal(await blobs.get("never/written"), undefined);
      await blobs.put("present", Uint8Array.of(1));
      assert.equal(await blobs.get("pres"), undefined);
      assert.equal(await blobs.get("presents"), undefined);
      // A key below an object's name: nothing there (a directory store must not fail on it).
      assert.equal(await blobs.get("present/under"), undefined);
    });

    it("replaces an object on a second put", async () => {
      const blobs = await store("overwrite");
      await blobs.put("manifest", new TextEncoder().encode("first, and longer than the second"));
      await blobs.put("manifest", new TextEncoder().encode("second"));
      assert.equal(new TextDecoder().decode(await blobs.get("manifest")), "second");
    });

    it("lists nested keys by prefix, partial names included", async () => {
      const blobs = await store("listing");
      const keys = ["data/abc", "data/abd/1", "data/abd/2", "data/b", "data-x", "manifests/7", "top"];
      for (const key of keys) await blobs.put(key, Uint8Array.of(7));
      assert.deepEqual(sorted(await blobs.list("")), sorted(keys));
      assert.deepEqual(sorted(await blobs.list("data/")), ["data/abc", "data/abd/1", "data/abd/2", "data/b"]);
      assert.deepEqual(sorted(await blobs.list("data/ab")), ["data/abc", "data/abd/1", "data/abd/2"]);
      assert.deepEqual(sorted(await blobs.list("data/abd/")), ["data/abd/1", "data/abd/2"]);
      assert.deepEqual(sorted(await blobs.list("data")), ["data-x", "data/abc", "data/abd/1", "data/abd/2", "data/b"]);
      assert.deepEqual(await blobs.list("manifests/7"), ["manifests/7"]);
      assert.deepEqual(await blobs.list("nothing/"), []);
      assert.deepEqual(await blobs.list("dat/"), []);
    });

    it(`lists and deletes ${MANY_KEYS} keys, more than one page`, async () => {
      const blobs = await store("many");
      const keys = Array.from({ length: MANY_KEYS }, (_, index) => `chunks/${String(index).padStart(5, "0")}`);
      await eachLimited(keys, PUT_CONCURRENCY, (key) => blobs.put(key, Uint8Array.of(index(key))));
      await blobs.put("other/one", Uint8Array.of(1));
      const listed = await blobs.list("chunks/");
      assert.equal(listed.length, MANY_KEYS);
      assert.deepEqual(sorted(listed), keys);
      await blobs.delete(keys);
      assert.deepEqual(await blobs.list(""), ["other/one"]);
    });

    it("deletes present keys and ignores missing ones", async () => {
      const blobs = await store("delete");
      await blobs.put("a/1", Uint8Array.of(1));
      await blobs.put("a/2", Uint8Array.of(2));
      await blobs.put("b", Uint8Array.of(3));
      await blobs.delete(["a/1", "never/there", "b"]);
      assert.equal(await blobs.get("a/1"), undefined);
      assert.equal(await blobs.get("b"), undefined);
      assert.deepEqual(bytes(await blobs.get("a/2")), [2]);
      assert.deepEqual(await blobs.list(""), ["a/2"]);
      await blobs.delete(["a/1", "a/2"]);
      await blobs.delete([]);
      assert.deepEqual(await blobs.list(""), []);
    });

    it("keeps each store's keys under its own prefix", async () => {
      const one = await store("tenants/one");
      const oneTwo = await store("tenants/one-two");
      const tenants = await store("tenants");
      await one.put("manifest", new TextEncoder().encode("one"));
      await oneTwo.put("manifest", new TextEncoder().encode("one-two"));
      await oneTwo.put("data/x", Uint8Array.of(1));
      assert.deepEqual(await one.list(""), ["manifest"]);
      assert.deepEqual(sorted(await oneTwo.list("")), ["data/x", "manifest"]);
      assert.equal(new TextDecoder().decode(await one.get("manifest")), "one");
      assert.equal(await one.get("data/x"), undefined);
      // The parent sees both, under their prefixes: the prefix is a path, not a name start.
      assert.deepEqual(sorted(await tenants.list("")), ["one-two/data/x", "one-two/manifest", "one/manifest"]);
      await one.delete(["manifest", "data/x"]);
      assert.deepEqual(sorted(await oneTwo.list("")), ["data/x", "manifest"]);
    });

    it("refuses keys that could leave the prefix", async () => {
      const blobs = await store("keys");
      for (const key of ["", "/abs", "dir/", "a//b", "../up", "a/./b"]) {
        await assert.rejects(blobs.put(key, Uint8Array.of(1)), /expected a relative path/, JSON.stringify(key));
        await assert.rejects(blobs.get(key), /expected a relative path/, JSON.stringify(key));
      }
      await assert.rejects(blobs.delete(["fine", "../up"]), /expected a relative path/);
    });

    it("answers a bad URL with an error value that names the problem", async () => {
      for (const [url, expected] of backend.badUrls) {
        const result = await openBlobStore(url);
        assert.equal(result.ok, false, url);
        if (!result.ok) assert.match(result.error, expected, url);
      }
    });

    const { stoppedUrl } = implementation;
    if (stoppedUrl === undefined) return;
    it("rejects an operation on a stopped server with a BlobStoreError naming the URL and the key", async () => {
      const blobs = await openStore(await stoppedUrl());
      try {
        for (const [operation, attempt] of [
          ["put", () => blobs.put("checkpoints/7/manifest", Uint8Array.of(1))],
          ["get", () => blobs.get("checkpoints/7/manifest")],
          ["delete", () => blobs.delete(["checkpoints/7/manifest"])],
        ] as const) {
          await assert.rejects(attempt(), (error: unknown) => {
            assert.ok(error instanceof BlobStoreError, `${operation}: ${error}`);
            assert.ok(error.message.includes(blobs.url), `${operation}: ${error.message} does not name ${blobs.url}`);
            assert.ok(error.message.includes("checkpoints/7/manifest"), `${operation}: ${error.message} names no key`);
            return true;
          });
        }
      } finally {
        await blobs.close();
      }
    });
  });
}

/** The small number a key of the many-keys test ends with. */
function index(key: string): number {
  return Number(key.slice(key.lastIndexOf("/") + 1)) % 256;
}
