// One Eddy per state directory. The lock is a Unix socket, eddy.lock in the state directory,
// that the holder listens on for as long as it runs. Why a socket: Node has no flock(2), and
// a listening socket has the property wanted from one: the kernel closes it the instant its
// process ends (kill -9 included; a zombie has closed its files already), so "connect
// succeeds" means a live holder and "connection refused" a file left behind, whatever pid
// a pid file names. bind(2) on an existing path fails with EADDRINUSE, which makes taking
// it atomic against a second starter. Not chosen: a native flock package (a native build,
// an install script to allow), LMDB's lock file (lmdb-js has no exclusive open), a Linux
// abstract socket (Linux only, and scoped to a network namespace, so two containers sharing
// a volume would both win; a path socket is reachable across them). eddy.pid still names
// the holder, for messages; it is believed only while the socket answers.
import { spawnSync } from "node:child_process";
import { linkSync, lstatSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { join, relative, resolve } from "node:path";

export const LOCK_SOCKET = "eddy.lock";
/** The holder's pid, written once the lock is taken (left behind by kill -9: only the socket says who is alive). */
export const HOLDER_PID_FILE = "eddy.pid";

export interface StateDirLock {
  /** Gives the directory up; call once the store is closed. */
  release(): Promise<void>;
}

export type LockTake =
  | { readonly ok: true; readonly lock: StateDirLock }
  | { readonly ok: false; readonly error: string };

/** A Unix socket path longer than this does not bind (sun_path is 108 bytes on Linux, 104 on macOS). */
const SOCKET_PATH_BYTES_MAX = 103;
/** Stale locks removed in a row before giving up (each removal races only with another starter). */
const TAKE_ATTEMPTS_MAX = 5;

/**
 * The socket's path: absolute, or relative to the working directory when that is short
 * enough and the absolute one is not (every process computes the same from its own cwd).
 */
function lockPath(stateDir: string): string {
  const absolute = resolve(stateDir, LOCK_SOCKET);
  if (Buffer.byteLength(absolute) <= SOCKET_PATH_BYTES_MAX) return absolute;
  const fromCwd = relative(process.cwd(), absolute);
  return Buffer.byteLength(fromCwd) < Buffer.byteLength(absolute) ? fromCwd : absolute;
}

function readHolderPid(stateDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(stateDir, HOLDER_PID_FILE), "utf8").trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function heldMessage(stateDir: string, pid: number | undefined): string {
  const holder = pid === undefined ? "another Eddy process" : `Eddy process ${pid}`;
  return `${stateDir} is in use by ${holder}; stop it first (one Eddy per state directory)`;
}

type Probe = "live" | "stale" | "gone";

/** Connects once: refused = stale, no file = gone, anything else (even EACCES, EAGAIN) = someone holds it. */
function probe(path: string): Promise<Probe> {
  return new Promise((settle) => {
    const socket = connect(path);
    socket.once("connect", () => {
      socket.destroy();
      settle("live");
    });
    socket.once("error", (error: NodeJS.ErrnoException) => {
      settle(error.code === "ECONNREFUSED" ? "stale" : error.code === "ENOENT" ? "gone" : "live");
    });
  });
}

function listen(server: Server, path: string): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((settle) => {
    server.once("error", settle);
    server.listen(path, () => {
      server.off("error", settle);
      settle(undefined);
    });
  });
}

/** The inode at `path`, if there is a file. */
function inodeAt(path: string): number | undefined {
  try {
    return lstatSync(path).ino;
  } catch {
    return undefined;
  }
}

/**
 * Removes the stale socket `staleInode`, and only it: moved aside first (rename is atomic),
 * so a socket another starter bound in the meantime is put back rather than deleted.
 */
function removeStale(path: string, staleInode: number): void {
  const aside = `${path}.stale-${process.pid}`;
  try {
    renameSync(path, aside);
  } catch {
    return; // gone already: another starter removed it
  }
  if (inodeAt(aside) !== staleInode) {
    try {
      linkSync(aside, path);
    } catch {
      // a third starter bound the path meanwhile; the next attempt finds it
    }
  }
  rmSync(aside, { force: true });
}

/** Takes the state directory (which must exist) for this process, or says who holds it. */
export async function takeStateDirLock(stateDir: string): Promise<LockTake> {
  const path = lockPath(stateDir);
  for (let attempt = 0; attempt < TAKE_ATTEMPTS_MAX; attempt++) {
    // Connections are closed at once: the socket's whole message is that it accepts them.
    const server = createServer((socket) => socket.destroy());
    const failure = await listen(server, path);
    if (failure === undefined) {
      // The lock alone must never keep the process alive.
      server.unref();
      const pidFile = join(stateDir, HOLDER_PID_FILE);
      const lock = heldLock(server, path, pidFile);
      try {
        // Renamed into place: a reader never sees half a pid.
        writeFileSync(`${pidFile}.${process.pid}`, String(process.pid));
        renameSync(`${pidFile}.${process.pid}`, pidFile);
      } catch (error) {
        await lock.release();
        return { ok: false, error: `cannot write ${pidFile}: ${(error as Error).message}` };
      }
      return { ok: true, lock };
    }
    if (failure.code !== "EADDRINUSE") {
      return { ok: false, error: `cannot lock ${stateDir} (socket ${path}): ${failure.message}` };
    }
    const inode = inodeAt(path);
    const found = await probe(path);
    if (found === "live") return { ok: false, error: heldMessage(stateDir, readHolderPid(stateDir)) };
    if (found === "stale" && inode !== undefined) removeStale(path, inode);
  }
  return {
    ok: false,
    error: `cannot lock ${stateDir}: its lock ${path} kept changing hands; is another Eddy starting?`,
  };
}

function heldLock(server: Server, path: string, pidFile: string): StateDirLock {
  let released: Promise<void> | undefined;
  return {
    release() {
      released ??= new Promise<void>((done) => {
        rmSync(pidFile, { force: true });
        // Unlinked before closing: once closed, a starter could find it stale and bind its
        // own in its place, which an unlink after would then delete.
        rmSync(path, { force: true });
        server.close(() => done());
      });
      return released;
    },
  };
}

// Runs in a child node (see stateDirHolder): exit 0 = someone listens, 1 = no one does.
const PROBE_SCRIPT = `const socket = require("node:net").connect(process.argv[1]);
socket.on("connect", () => process.exit(0));
socket.on("error", (error) => process.exit(error.code === "ECONNREFUSED" || error.code === "ENOENT" ? 1 : 0));`;
const PROBE_TIMEOUT_MS = 10_000;

/**
 * The pid of the live Eddy holding `stateDir`, if any (0 when it holds it but its pid file
 * cannot be read). Synchronous for its callers, so the connect runs in a child process (a
 * few tens of milliseconds); when that child cannot tell, the answer is "held", the safe one.
 */
export function stateDirHolder(stateDir: string): number | undefined {
  const path = lockPath(stateDir);
  if (inodeAt(path) === undefined) return undefined;
  const { NODE_OPTIONS: _ignored, ...env } = process.env;
  const child = spawnSync(process.execPath, ["-e", PROBE_SCRIPT, path], {
    stdio: "ignore",
    timeout: PROBE_TIMEOUT_MS,
    env,
  });
  if (child.status === 1) return undefined;
  return readHolderPid(stateDir) ?? 0;
}
