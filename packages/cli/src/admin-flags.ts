// --admin-port, shared by eddy run and eddy dev: where the admin listener (GET /metrics) listens,
// on --host with the ingress's token. Default 8093, or EDDY_ADMIN_PORT; --port-offset moves the
// default (and the environment's) as it moves the module's ports, so several workers run from one
// module file, but not a port given with the flag, which names this process's port exactly.
// `off` (flag or environment) runs without the listener, and so without metrics and the UI.
import { UsageError } from "./usage.ts";

export const ADMIN_OPTIONS = {
  "admin-port": { type: "string" },
} as const;

/** The admin port when neither the flag nor the environment names one (the runtime itself has none). */
const ADMIN_PORT_DEFAULT = 8093;
const PORT_MAX = 65535;

/** The word that turns the admin listener off. */
const OFF = "off";

export function adminFlags(
  values: { readonly "admin-port"?: string | undefined },
  portOffset: number | undefined,
  env: NodeJS.ProcessEnv = process.env,
): { readonly port: number } | undefined {
  const flag = values["admin-port"];
  if (flag === OFF) return undefined;
  if (flag !== undefined) return { port: parsePort("--admin-port", flag) };
  const fromEnv = env.EDDY_ADMIN_PORT;
  if (fromEnv === OFF) return undefined;
  const base = fromEnv === undefined || fromEnv === "" ? ADMIN_PORT_DEFAULT : parsePort("EDDY_ADMIN_PORT", fromEnv);
  if (base === 0) return { port: 0 };
  const moved = base + (portOffset ?? 0);
  if (moved > PORT_MAX) {
    throw new UsageError(`--port-offset ${portOffset} moves the admin port ${base} to ${moved}, past ${PORT_MAX}`);
  }
  return { port: moved };
}

/**
 * The admin listener for a run on partition threads, which do not run it yet: asked for by the
 * flag or the environment, it stays (and the runtime refuses to start, naming it); by default
 * only, it is left out, with a line on stderr saying so.
 */
export function adminForThreads(
  admin: { readonly port: number } | undefined,
  values: { readonly "admin-port"?: string | undefined },
  threads: number,
  env: NodeJS.ProcessEnv = process.env,
): { readonly port: number } | undefined {
  if (threads === 1 || admin === undefined) return admin;
  if (values["admin-port"] !== undefined || (env.EDDY_ADMIN_PORT ?? "") !== "") return admin;
  process.stderr.write(
    `eddy: no admin listener with --threads ${threads} yet (metrics, the web UI and the admin API run with --threads 1)\n`,
  );
  return undefined;
}

function parsePort(where: string, text: string): number {
  if (!/^\d+$/.test(text) || Number(text) > PORT_MAX) {
    throw new UsageError(
      `${where}: "${text}" is not a port; expected a whole number from 0 (any free port) to ${PORT_MAX}, or off`,
    );
  }
  return Number(text);
}

/** The line that says where the admin listener is. */
export function printAdminUrl(url: string | undefined): void {
  if (url !== undefined)
    process.stdout.write(`eddy: admin listening on ${url} (web UI at ${url}ui/, metrics at ${url}metrics)\n`);
}
