// What a benchmark ran on, for its report: CPU model and count, memory, Node version.
import { readFileSync } from "node:fs";
import { availableParallelism, cpus, totalmem } from "node:os";

export interface Machine {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly v8: string;
  readonly platform: string;
}

function cpuModel(): string {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (match?.[1] !== undefined) return match[1].trim();
  } catch {
    // not Linux: fall back to what os.cpus() says
  }
  return cpus()[0]?.model ?? "unknown";
}

export function machine(): Machine {
  return {
    cpuModel: cpuModel(),
    cores: availableParallelism(),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform}-${process.arch}`,
  };
}
