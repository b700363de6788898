// Free TCP ports on 127.0.0.1 for the servers tests start.
//
// A port is picked below the kernel's ephemeral range, never with listen(0): a port from listen(0)
// is an ephemeral one, and between closing it here and the server binding it, any outbound
// connection on the machine (tests run side by side) may take it as its local port. CI lost a run
// that way ("port 35711 on 127.0.0.1 is in use"). Below the range only a server that binds the
// same number can take it, and picking at random makes two tests choosing the same one unlikely.
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";

const LOWEST_PORT = 10_000;
const MAX_TRIES = 1_000;

/** The first port of the kernel's ephemeral range, or Linux's default where it cannot be read. */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > LOWEST_PORT + 1_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

function bind(server: Server, port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const failed = (): void => resolve(false);
    server.once("error", failed);
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => {
      server.off("error", failed);
      resolve(true);
    });
  });
}

/** `count` distinct free ports, held open together while they are picked so none repeats. */
export async function freePorts(count: number): Promise<number[]> {
  const high = ephemeralLow();
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let tries = 0; ports.length < count; tries++) {
      if (tries === MAX_TRIES) throw new Error(`no free TCP port on 127.0.0.1 in ${LOWEST_PORT}-${high - 1}`);
      const port = LOWEST_PORT + Math.floor(Math.random() * (high - LOWEST_PORT));
      if (ports.includes(port)) continue;
      const server = createServer();
      if (await bind(server, port)) {
        servers.push(server);
        ports.push(port);
      }
    }
    return ports;
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}

export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port as number;
}
