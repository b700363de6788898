// Opens a blob store from the URL given to --checkpoints: file:///dir (or a plain path),
// s3://bucket/prefix, gs://bucket/prefix. The S3 and GCS clients load only when used.
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { BlobStore } from "./blob-store.ts";
import { DirectoryBlobStore } from "./directory-blob-store.ts";

export type OpenedBlobStore =
  | { readonly ok: true; readonly store: BlobStore }
  | { readonly ok: false; readonly error: string };

const EXPECTED = "file:///dir, a directory path, s3://bucket/prefix or gs://bucket/prefix";

export async function openBlobStore(location: string): Promise<OpenedBlobStore> {
  let url: URL;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) {
    try {
      url = new URL(location);
    } catch {
      return {
        ok: false,
        error: `checkpoint location ${JSON.stringify(location)} is not a valid URL (expected ${EXPECTED})`,
      };
    }
  } else {
    if (location === "") return { ok: false, error: `checkpoint location is empty (expected ${EXPECTED})` };
    url = pathToFileURL(isAbsolute(location) ? location : resolve(location));
  }
  switch (url.protocol) {
    case "file:":
      if (url.host !== "")
        return { ok: false, error: `checkpoint location ${location}: a file URL names no host (file:///dir)` };
      return { ok: true, store: DirectoryBlobStore.fromUrl(url) };
    case "s3:": {
      const { S3BlobStore } = await import("./s3-blob-store.ts");
      return S3BlobStore.fromUrl(url);
    }
    case "gs:": {
      const { GcsBlobStore } = await import("./gcs-blob-store.ts");
      return GcsBlobStore.fromUrl(url);
    }
    default:
      return {
        ok: false,
        error: `checkpoint location ${location}: unsupported scheme ${url.protocol} (expected ${EXPECTED})`,
      };
  }
}
