// How a cluster worker's admin API asks another worker's (cluster-admin.ts): JSON over HTTP to
// the admin URL the worker announced in the group, with this worker's bearer token (a cluster's
// workers share one) and ADMIN_FORWARDED_HEADER, over connections kept alive between calls.
// Every failure is a value naming the worker and what went wrong; nothing throws.
import { Agent, request } from "undici";
import { errorMessage } from "../errors.ts";
import { ADMIN_FORWARDED_HEADER, type AdminRequest, type PeerAnswer, type ReachablePeer } from "./cluster-admin.ts";

/** Beyond the longest a worker takes to answer (a state write waits up to 10 s for a batch). */
const PEER_TIMEOUT_MS = 15_000;
/** The most of an answer read: a page of 1,000 dead letters, a state value of 4 MiB, and room. */
const ANSWER_BYTES_MAX = 16 * 1024 * 1024;

export class AdminPeerClient {
  readonly #agent = new Agent({ keepAliveTimeout: 30_000, connections: 8 });
  readonly #workerId: string;
  readonly #token: string | undefined;

  constructor(workerId: string, token: string | undefined) {
    this.#workerId = workerId;
    this.#token = token;
  }

  async send(peer: ReachablePeer, call: AdminRequest): Promise<PeerAnswer> {
    const url = `${peer.adminUrl}${call.pathAndQuery}`;
    try {
      const response = await request(url, {
        method: call.method,
        dispatcher: this.#agent,
        headers: {
          accept: "application/json",
          [ADMIN_FORWARDED_HEADER]: this.#workerId,
          ...(this.#token === undefined ? {} : { authorization: `Bearer ${this.#token}` }),
          ...(call.body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(call.body === undefined ? {} : { body: JSON.stringify(call.body) }),
        headersTimeout: PEER_TIMEOUT_MS,
        bodyTimeout: PEER_TIMEOUT_MS,
      });
      const chunks: Buffer[] = [];
      let bytes = 0;
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (bytes > ANSWER_BYTES_MAX) {
          response.body.destroy();
          return { ok: false, error: `${url} answered more than ${ANSWER_BYTES_MAX} bytes` };
        }
        chunks.push(chunk);
      }
      const text = Buffer.concat(chunks).toString("utf8");
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        return { ok: false, error: `${url} answered ${response.statusCode} with a body that is not JSON` };
      }
      return { ok: true, reply: { status: response.statusCode, body } };
    } catch (error) {
      return { ok: false, error: `${url}: ${errorMessage(error)}` };
    }
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}
