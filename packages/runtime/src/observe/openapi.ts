// The OpenAPI 3.1 document of the admin listener (GET /openapi.json), made from the route table
// (admin-api.ts) plus the routes the server answers itself (health, metrics, this document, the
// UI), so a route cannot be served without being described. Shapes are described where a client
// needs them to read an answer; docs/admin-api.md says the rest in words.
import { ADMIN_ROUTES, type AdminRoute } from "./admin-api.ts";

const ERROR = { $ref: "#/components/schemas/Error" };

const jsonBody = (schema: unknown, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

const errors = {
  "400": jsonBody(ERROR, "Bad input: the message names what was wrong."),
  "401": jsonBody(ERROR, "A bearer token is needed (Eddy runs with --token)."),
  "404": jsonBody(ERROR, "No such function type, state, dead letter or route."),
  "409": jsonBody(ERROR, "Not possible now (the runtime stops; no checkpoints; a letter that cannot be replayed)."),
  "503": jsonBody(ERROR, "Not ready, or a commit was refused: nothing happened, ask again."),
};

const object = { type: "object" };

/** Query parameters of the paged lists. */
const PAGE_PARAMETERS = [
  { name: "limit", in: "query", required: false, schema: { type: "integer", minimum: 1, maximum: 1000, default: 50 } },
  {
    name: "after",
    in: "query",
    required: false,
    schema: { type: "string" },
    description: "The `next` of the page before.",
  },
];

const QUERY: Partial<Record<string, unknown[]>> = {
  listStateIds: [
    ...PAGE_PARAMETERS,
    {
      name: "prefix",
      in: "query",
      required: false,
      schema: { type: "string" },
      description: "Only ids starting with it.",
    },
  ],
  listDeadLetters: PAGE_PARAMETERS,
};

const SELECTION = {
  type: "object",
  properties: { ids: { type: "array", items: { type: "string" }, minItems: 1 }, all: { const: true } },
  oneOf: [{ required: ["ids"] }, { required: ["all"] }],
};

const BODIES: Partial<Record<string, unknown>> = {
  putState: {
    required: true,
    content: { "application/json": { schema: { $ref: "#/components/schemas/StateWrite" } } },
  },
  replayDeadLetters: { required: true, content: { "application/json": { schema: SELECTION } } },
  discardDeadLetters: { required: true, content: { "application/json": { schema: SELECTION } } },
  takeSavepoint: {
    required: true,
    content: {
      "application/json": {
        schema: {
          type: "object",
          required: ["name"],
          properties: { name: { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$" } },
        },
      },
    },
  },
};

const RESULTS: Partial<Record<string, unknown>> = {
  listFunctionTypes: {
    type: "object",
    required: ["functionTypes"],
    properties: { functionTypes: { type: "array", items: { $ref: "#/components/schemas/FunctionType" } } },
  },
  getFunctionType: { $ref: "#/components/schemas/FunctionType" },
  pauseFunctionType: { $ref: "#/components/schemas/FunctionType" },
  resumeFunctionType: { $ref: "#/components/schemas/FunctionType" },
  listStateIds: {
    type: "object",
    required: ["ids", "next"],
    properties: { ids: { type: "array", items: { type: "string" } }, next: { type: ["string", "null"] } },
  },
  getAddress: { $ref: "#/components/schemas/Address" },
  putState: { $ref: "#/components/schemas/StateEntry" },
  deleteState: { type: "object", required: ["deleted"], properties: { deleted: { type: "boolean" } } },
};

function operation(route: AdminRoute): Record<string, unknown> {
  const pathParameters = [...route.path.matchAll(/\{(\w+)\}/g)].map(([, name]) => ({
    name,
    in: "path",
    required: true,
    schema: { type: "string" },
  }));
  const parameters = [...pathParameters, ...(QUERY[route.operationId] ?? [])];
  return {
    operationId: route.operationId,
    summary: route.summary,
    ...(parameters.length === 0 ? {} : { parameters }),
    ...(BODIES[route.operationId] === undefined ? {} : { requestBody: BODIES[route.operationId] }),
    responses: { "200": jsonBody(RESULTS[route.operationId] ?? object, "Done."), ...errors },
  };
}

/** Routes the server answers itself, not through the route table. */
const SERVER_PATHS: Record<string, unknown> = {
  "/healthz": {
    get: {
      operationId: "healthz",
      summary: "Liveness: 200 while the process serves.",
      responses: { "200": jsonBody(object, "Alive.") },
    },
  },
  "/readyz": {
    get: {
      operationId: "readyz",
      summary: "Readiness: 200 once the store is open and the engine runs.",
      responses: { "200": jsonBody(object, "Ready."), "503": jsonBody(ERROR, "Not ready yet.") },
    },
  },
  "/metrics": {
    get: {
      operationId: "metrics",
      summary: "Prometheus metrics (text exposition format).",
      responses: { "200": { description: "The metrics.", content: { "text/plain": { schema: { type: "string" } } } } },
    },
  },
  "/openapi.json": {
    get: { operationId: "openapi", summary: "This document.", responses: { "200": jsonBody(object, "OpenAPI 3.1.") } },
  },
  "/ui/": {
    get: {
      operationId: "ui",
      summary: "The web UI (files under /ui/).",
      responses: { "200": { description: "The UI's page.", content: { "text/html": { schema: { type: "string" } } } } },
    },
  },
};

const SCHEMAS = {
  Error: {
    type: "object",
    required: ["code", "message"],
    properties: { code: { type: "string" }, message: { type: "string" } },
  },
  Latency: {
    type: ["object", "null"],
    required: ["p50", "p99"],
    properties: { p50: { type: "number" }, p99: { type: "number" } },
  },
  FunctionType: {
    type: "object",
    required: ["typename", "endpoint", "paused", "backlog", "inFlight", "invocations", "failures", "health"],
    properties: {
      typename: { type: "string" },
      endpoint: {
        oneOf: [
          {
            type: "object",
            required: ["kind", "url"],
            properties: { kind: { const: "http" }, url: { type: "string" } },
          },
          { type: "object", required: ["kind"], properties: { kind: { const: "in-process" } } },
        ],
      },
      paused: { type: "boolean" },
      backlog: { type: "integer" },
      inFlight: { type: "integer" },
      invocations: { type: "integer" },
      failures: { type: "integer" },
      deadLetters: { type: "integer" },
      health: {
        type: "object",
        required: ["status", "lastSuccessAtMs", "lastFailureAtMs", "lastError", "latencyMs"],
        properties: {
          status: { enum: ["ok", "failing", "idle"] },
          lastSuccessAtMs: { type: ["number", "null"] },
          lastFailureAtMs: { type: ["number", "null"] },
          lastError: { type: ["string", "null"] },
          latencyMs: { $ref: "#/components/schemas/Latency" },
        },
      },
    },
  },
  StateEntry: {
    type: "object",
    required: ["typename", "value", "encoding", "writtenAtMs"],
    properties: {
      typename: { type: "string" },
      value: {},
      encoding: { enum: ["json", "base64"] },
      writtenAtMs: { type: "number" },
    },
  },
  StateWrite: {
    type: "object",
    properties: { value: {}, base64: { type: "string" }, typename: { type: "string" } },
    oneOf: [{ required: ["value"] }, { required: ["base64"] }],
  },
  Address: {
    type: "object",
    required: ["address", "partition", "state", "backlog", "inFlight", "delayedMessages"],
    properties: {
      address: {
        type: "object",
        required: ["namespace", "type", "id"],
        properties: { namespace: { type: "string" }, type: { type: "string" }, id: { type: "string" } },
      },
      partition: { type: "integer" },
      state: { type: "object", additionalProperties: { $ref: "#/components/schemas/StateEntry" } },
      backlog: { type: "integer" },
      inFlight: {
        type: ["object", "null"],
        properties: { messages: { type: "integer" }, failedAttempts: { type: "integer" }, sent: { type: "boolean" } },
      },
      delayedMessages: { type: "integer" },
    },
  },
};

/** The document, built once. */
export function openApiDocument(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [path, item] of Object.entries(SERVER_PATHS)) paths[path] = item as Record<string, unknown>;
  for (const route of ADMIN_ROUTES) {
    paths[route.path] ??= {};
    (paths[route.path] as Record<string, unknown>)[route.method.toLowerCase()] = operation(route);
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Eddy admin API",
      version,
      description:
        "The admin listener of a running Eddy: health, metrics, function types, state, dead letters and checkpoints.",
    },
    servers: [{ url: "/" }],
    security: [{}, { bearer: [] }],
    paths,
    components: { schemas: SCHEMAS, securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
  };
}
