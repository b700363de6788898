// Prometheus's text format read by the Prometheus project's own parser (its Python client,
// prometheus_client.parser, in the virtualenv scripts/ensure-python.sh makes), so a test of
// /metrics checks what Prometheus would read, not what a parser of ours accepts.
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { ensurePython, VENV_PYTHON } from "./python-server.ts";

const root = resolve(import.meta.dirname, "../..");

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** A non-finite value comes as the parser's text for it ("inf", "nan"). */
  readonly value: number;
}

export interface Family {
  readonly name: string;
  readonly type: string;
  readonly samples: readonly Sample[];
}

const PARSE_SCRIPT = [
  "import json, math, sys",
  "from prometheus_client.parser import text_string_to_metric_families",
  "families = []",
  "for family in text_string_to_metric_families(sys.stdin.read()):",
  "    samples = [{'name': s.name, 'labels': s.labels, 'value': s.value if math.isfinite(s.value) else str(s.value)} for s in family.samples]",
  "    families.append({'name': family.name, 'type': family.type, 'samples': samples})",
  "print(json.dumps(families))",
].join("\n");

/** Parses a text exposition with prometheus_client.parser; throws with the parser's complaint. */
export function parseExposition(text: string): Family[] {
  ensurePython();
  const parsed = spawnSync(VENV_PYTHON, ["-c", PARSE_SCRIPT], { input: text, encoding: "utf8", cwd: root });
  if (parsed.status !== 0) throw new Error(`the Prometheus parser refused the exposition:\n${parsed.stderr}`);
  return JSON.parse(parsed.stdout) as Family[];
}

/** The value of the first sample `name` whose labels include `labels`; undefined when there is none. */
export function sampleValue(
  families: readonly Family[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const family of families) {
    for (const sample of family.samples) {
      if (sample.name !== name) continue;
      if (Object.entries(labels).every(([key, value]) => sample.labels[key] === value)) return sample.value;
    }
  }
  return undefined;
}
