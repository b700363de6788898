// Checks that checkpoints would restore: every object a manifest lists is downloaded and
// its size, SHA-256 and decompression checked, without writing anything.
import type { BlobStore } from "./blob/blob-store.ts";
import { allFiles, type Manifest, storedBytes } from "./manifest.ts";
import { downloadFile } from "./stored-files.ts";

export interface VerifiedCheckpoint {
  readonly manifest: Manifest;
  /** What is wrong with each bad object; empty when the checkpoint is sound. */
  readonly problems: readonly string[];
  readonly bytes: number;
}

export async function verifyCheckpoint(
  store: BlobStore,
  manifest: Manifest,
  concurrency = 4,
  progress?: (doneFiles: number, totalFiles: number) => void,
): Promise<VerifiedCheckpoint> {
  const files = allFiles(manifest);
  const problems: string[] = [];
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < files.length) {
      const file = files[next++];
      if (file === undefined) break;
      const result = await downloadFile(store, file);
      if (!result.ok) problems.push(result.error);
      progress?.(++done, files.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker));
  return { manifest, problems: problems.sort(), bytes: storedBytes(files) };
}
