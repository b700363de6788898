// A lean HTTP/1.1 load generator: closed-loop clients, one keep-alive connection each,
// each sending its next request once the last answer is read. It exists because the load
// generator shares this 2-core machine with the system under test: undici's Pool costs
// ~140 µs of CPU a request here, which starves a server answering thousands a second,
// while this client costs a fraction of that. Every system in a benchmark faces the same
// client, so the comparison stays fair; what it frees is CPU, not an advantage.
//
// It understands exactly what the benchmarks get back: a status line, headers, and a body
// framed by Content-Length or chunked encoding. Anything else is an error for that request.
import { connect, type Socket } from "node:net";

export interface LoadRequest {
  readonly method?: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface Answer {
  readonly status: number;
  readonly body: Buffer;
}

/** One keep-alive connection; `send` must not be called again before its promise settles. */
export class HttpConnection {
  readonly #host: string;
  readonly #port: number;
  #socket: Socket | undefined;
  #buffer: Buffer = Buffer.alloc(0);
  #pending: { resolve: (answer: Answer) => void; reject: (error: Error) => void } | undefined;

  constructor(url: string) {
    const parsed = new URL(url);
    this.#host = parsed.hostname;
    this.#port = Number(parsed.port);
  }

  send(request: LoadRequest, timeoutMs = 120_000): Promise<Answer> {
    const body = Buffer.from(request.body);
    let head = `${request.method ?? "POST"} ${request.path} HTTP/1.1\r\nhost: ${this.#host}:${this.#port}\r\n`;
    for (const [name, value] of Object.entries(request.headers)) head += `${name}: ${value}\r\n`;
    head += `content-length: ${body.length}\r\n\r\n`;
    const socket = this.#socket ?? this.#open();
    return new Promise<Answer>((resolve, reject) => {
      const timer = setTimeout(() => this.#fail(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      this.#pending = {
        resolve: (answer) => {
          clearTimeout(timer);
          resolve(answer);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      socket.write(Buffer.concat([Buffer.from(head, "latin1"), body]));
    });
  }

  close(): void {
    this.#socket?.destroy();
    this.#socket = undefined;
  }

  #open(): Socket {
    const socket = connect({ host: this.#host, port: this.#port, noDelay: true });
    this.#socket = socket;
    this.#buffer = Buffer.alloc(0);
    // Events of a connection already given up (closed, or failed) are ignored.
    socket.on("data", (chunk: Buffer) => {
      if (socket !== this.#socket) return;
      this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
      this.#parse();
    });
    socket.on("error", (error) => {
      if (socket === this.#socket) this.#fail(error);
    });
    socket.on("close", () => {
      if (socket === this.#socket) this.#fail(new Error("connection closed"));
    });
    return socket;
  }

  /** Ends the connection and fails the request on it; the next send opens a new one. */
  #fail(error: Error): void {
    this.#socket?.destroy();
    this.#socket = undefined;
    const pending = this.#pending;
    this.#pending = undefined;
    pending?.reject(error);
  }

  #parse(): void {
    const buffer = this.#buffer;
    const headEnd = buffer.indexOf("\r\n\r\n");
    if (headEnd < 0) return;
    const head = buffer.toString("latin1", 0, headEnd);
    const status = Number(head.slice(9, 12));
    const lines = head.split("\r\n");
    let length: number | undefined;
    let chunked = false;
    let close = false;
    for (let index = 1; index < lines.length; index++) {
      const line = lines[index] as string;
      const colon = line.indexOf(":");
      const name = line.slice(0, colon).toLowerCase();
      const value = line
        .slice(colon + 1)
        .trim()
        .toLowerCase();
      if (name === "content-length") length = Number(value);
      else if (name === "transfer-encoding") chunked = value.includes("chunked");
      else if (name === "connection") close = value === "close";
    }
    const bodyStart = headEnd + 4;
    let body: Buffer;
    let end: number;
    if (chunked) {
      const parts: Buffer[] = [];
      let at = bodyStart;
      for (;;) {
        const lineEnd = buffer.indexOf("\r\n", at);
        if (lineEnd < 0) return;
        const size = Number.parseInt(buffer.toString("latin1", at, lineEnd), 16);
        if (Number.isNaN(size)) {
          this.#fail(new Error("malformed chunk size"));
          return;
        }
        if (buffer.length < lineEnd + 2 + size + 2) return;
        if (size === 0) {
          end = lineEnd + 4;
          break;
        }
        parts.push(buffer.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
      body = Buffer.concat(parts);
    } else {
      const bodyLength = length ?? 0;
      if (buffer.length < bodyStart + bodyLength) return;
      body = buffer.subarray(bodyStart, bodyStart + bodyLength);
      end = bodyStart + bodyLength;
    }
    this.#buffer = buffer.subarray(end);
    const pending = this.#pending;
    this.#pending = undefined;
    if (close) this.close();
    pending?.resolve({ status, body });
  }
}
