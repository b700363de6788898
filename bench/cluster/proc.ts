// What bench/cluster reads of other processes from Linux's /proc: CPU time (all threads of a
// process) and resident memory, and the PID of the Kafka broker's JVM, which startKafka()
// does not hand out. Read only: nothing here signals a process.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { KafkaBroker } from "../../test/support/kafka-broker.ts";

const CLOCK_TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process, all its threads, in µs; undefined once it is gone. */
export function cpuMicros(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // After the command name, which may hold spaces: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND) * 1e6;
  } catch {
    return undefined;
  }
}

/** Resident memory of a process in MB (10^6 bytes, as the other benchmarks print it); undefined once it is gone. */
/** A process's group commits so far: how many, and their summed duration (its /metrics). */
export interface CommitTally {
  readonly count: number;
  readonly seconds: number;
}

/**
 * The commits of the Eddy processes whose admin URLs are `adminUrls`, summed from each one's
 * `eddy_commit_duration_seconds` histogram; undefined when one cannot be read.
 */
export async function commitTally(adminUrls: readonly (string | undefined)[]): Promise<CommitTally | undefined> {
  let count = 0;
  let seconds = 0;
  for (const url of adminUrls) {
    if (url === undefined) return undefined;
    let text: string;
    try {
      const response = await fetch(new URL("metrics", url), { signal: AbortSignal.timeout(5_000) });
      if (!response.ok) return undefined;
      text = await response.text();
    } catch {
      return undefined;
    }
    for (const line of text.split("\n")) {
      const [name, value] = line.split(" ");
      if (name?.startsWith("eddy_commit_duration_seconds_count")) count += Number(value);
      else if (name?.startsWith("eddy_commit_duration_seconds_sum")) seconds += Number(value);
    }
  }
  return { count, seconds };
}

export function rssMb(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match === null ? undefined : Math.round((Number(match[1]) * 1024) / 1e6);
  } catch {
    return undefined;
  }
}

/** The broker's JVM, found by the server.properties path on its command line. */
export function brokerPid(broker: KafkaBroker): number | undefined {
  const properties = join(dirname(broker.logDir), "server.properties");
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").includes(properties)) return Number(entry);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return undefined;
}
