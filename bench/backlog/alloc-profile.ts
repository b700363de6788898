// Where the runtime allocates, garbage included: a preload that runs V8's sampling heap
// profiler for the life of the process, keeping the samples of objects the collector freed
// (Node's --heap-prof keeps only what is still alive at exit, which hides the garbage that
// costs a runtime its GC time), and writes the profile when the process ends.
//
//   node bench/backlog/run.ts --records 300000 \
//     --node-flags="--import=$PWD/bench/backlog/alloc-profile.ts"
//   node bench/backlog/alloc-summary.ts <dir of ALLOC_PROFILE_DIR>/alloc-<pid>.json
//
// The profile goes to $ALLOC_PROFILE_DIR (default: the system's temp directory). One sample
// every ALLOC_SAMPLE_BYTES allocated on average: totals are estimates, good to a few percent
// over a run of seconds.
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ALLOC_SAMPLE_BYTES = 32 * 1024;
const directory = process.env.ALLOC_PROFILE_DIR ?? tmpdir();

const session = new Session();
session.connect();
session.post("HeapProfiler.enable");
session.post("HeapProfiler.startSampling", {
  samplingInterval: ALLOC_SAMPLE_BYTES,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
});

let written = false;
function writeProfile(): void {
  if (written) return;
  written = true;
  // The inspector session on the main thread answers synchronously, so this works in "exit".
  session.post("HeapProfiler.stopSampling", (error, result) => {
    if (error !== null) {
      process.stderr.write(`alloc-profile: ${error.message}\n`);
      return;
    }
    const path = join(directory, `alloc-${process.pid}.json`);
    writeFileSync(path, JSON.stringify(result.profile));
    process.stderr.write(`alloc-profile: wrote ${path}\n`);
  });
}

process.on("exit", writeProfile);
// Before the runtime's own handlers, which end the process.
for (const signal of ["SIGTERM", "SIGINT"] as const) process.prependListener(signal, writeProfile);
