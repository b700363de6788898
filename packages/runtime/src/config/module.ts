// Loads StateFun 3.x module.yaml files: a multi-document YAML stream of `{kind, spec}`
// components (or the legacy 3.0 single document, translated), validated in one pass that
// collects every error of a file. Several files merge into one ModuleConfig, as StateFun
// loads every module directory; a function type, namespace, ingress or egress bound twice
// is an error naming both places.
import { access, constants, readFile, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { type Document, isMap, isScalar, LineCounter, type Node, parseAllDocuments } from "yaml";
import {
  ConfigError,
  ConfigErrorCode,
  type ConfigWarning,
  ConfigWarningCode,
  type FieldLocation,
  formatLocation,
  type SourceLocation,
  sortDiagnostics,
} from "./diagnostics.ts";
import { type EndpointContext, parseEndpoint } from "./endpoint.ts";
import { parseKafkaEgress, parseKafkaIngress } from "./kafka.ts";
import { parseKinesisEgress, parseKinesisIngress } from "./kinesis.ts";
import { parsePlaygroundEgress, parsePlaygroundIngress } from "./playground.ts";
import { closestKey, type Entry, type MapView, quote, Reader } from "./reader.ts";
import {
  type EgressConfig,
  type FileReference,
  type HttpEndpointConfig,
  type IngressConfig,
  Kind,
  type ModuleConfig,
  SUPPORTED_KINDS,
} from "./types.ts";

export type LoadResult =
  | { readonly ok: true; readonly module: ModuleConfig; readonly warnings: readonly ConfigWarning[] }
  | { readonly ok: false; readonly errors: readonly ConfigError[]; readonly warnings: readonly ConfigWarning[] };

interface Components {
  readonly endpoints: HttpEndpointConfig[];
  readonly ingresses: IngressConfig[];
  readonly egresses: EgressConfig[];
}

const KIND_EXPECTED = `one of the supported kinds: ${SUPPORTED_KINDS.join(", ")}`;
const COMPONENT_KEYS = ["kind", "spec"] as const;

/** Parses one module.yaml's text; `fileName` appears in errors and anchors relative TLS paths. */
export function parseModule(text: string, fileName: string): LoadResult {
  const lineCounter = new LineCounter();
  const documents = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const sink = { errors: [] as ConfigError[], warnings: [] as ConfigWarning[] };
  const components: Components = { endpoints: [], ingresses: [], egresses: [] };
  const context: EndpointContext = { baseDir: dirname(resolve(fileName)) };

  const meaningful: Document.Parsed[] = [];
  for (const document of documents) {
    const r = new Reader(fileName, lineCounter, document, sink);
    const [error] = document.errors;
    if (error !== undefined) {
      // Only the first syntax error: later ones are mostly its echoes, and the rest of a broken
      // document is unreliable. Other documents are still checked.
      const opening = error.code === "MISSING_CHAR" ? unclosedQuote(text, error.pos[0], error.message) : undefined;
      if (opening !== undefined) {
        r.error(
          ConfigErrorCode.SYNTAX,
          opening,
          "",
          "invalid YAML: this quoted string is never closed",
          "a closing quote",
        );
      } else {
        r.error(ConfigErrorCode.SYNTAX, error.pos[0], "", `invalid YAML: ${error.message}`, "well-formed YAML");
      }
      continue;
    }
    for (const warning of document.warnings) {
      r.warn(ConfigWarningCode.IGNORED, warning.pos[0], "", warning.message);
    }
    const contents = document.contents as Node | null;
    if (contents === null || (isScalar(contents) && contents.value === null)) continue;
    meaningful.push(document);
  }

  const [single] = meaningful;
  if (meaningful.length === 1 && single !== undefined && isLegacy(single)) {
    const r = new Reader(fileName, lineCounter, single, sink);
    translateLegacy(r, { path: "", value: single.contents as Node, key: undefined }, context, components);
  } else {
    for (const document of meaningful) {
      const r = new Reader(fileName, lineCounter, document, sink);
      parseComponent(r, { path: "", value: document.contents as Node, key: undefined }, context, components);
    }
  }

  const module: ModuleConfig = { files: [fileName], ...components };
  const bindingErrors: ConfigError[] = [];
  checkUnique(module, bindingErrors);
  const errors = sortDiagnostics([...sink.errors, ...bindingErrors]);
  const warnings = sortDiagnostics(sink.warnings);
  return errors.length > 0 ? { ok: false, errors, warnings } : { ok: true, module, warnings };
}

/** Reads and parses one module file (or `<dir>/module.yaml` for a directory) and checks the TLS files it names. */
export async function loadModuleFile(path: string): Promise<LoadResult> {
  let file = path;
  let text: string;
  try {
    if ((await stat(path)).isDirectory()) file = join(path, "module.yaml");
    text = await readFile(file, "utf8");
  } catch (cause) {
    const reason = (cause as { code?: string }).code ?? String(cause);
    const error = new ConfigError(
      ConfigErrorCode.UNREADABLE,
      { file, line: 1, column: 1 },
      "",
      `cannot read the module file (${reason})`,
      "a readable module.yaml, or a directory containing one",
    );
    return { ok: false, errors: [error], warnings: [] };
  }
  const result = parseModule(text, file);
  if (!result.ok) return result;
  const missing: ConfigError[] = [];
  for (const reference of fileReferences(result.module)) {
    try {
      await access(reference.path, constants.R_OK);
    } catch (cause) {
      const reason = (cause as { code?: string }).code ?? String(cause);
      missing.push(
        new ConfigError(
          ConfigErrorCode.MISSING_FILE,
          reference.source,
          reference.source.field,
          `cannot read ${reference.path} (${reason})`,
          "a readable file",
        ),
      );
    }
  }
  return missing.length > 0 ? { ok: false, errors: missing, warnings: result.warnings } : result;
}

/** Loads every file and merges them; reports the errors of all files, not just the first. */
export async function loadModuleFiles(paths: readonly string[]): Promise<LoadResult> {
  return mergeResults(await Promise.all(paths.map((path) => loadModuleFile(path))));
}

/** Merges per-file results: all errors and warnings, then the cross-file duplicate check. */
export function mergeResults(results: readonly LoadResult[]): LoadResult {
  const errors = results.flatMap((result) => (result.ok ? [] : result.errors));
  const warnings = results.flatMap((result) => result.warnings);
  const modules = results.flatMap((result) => (result.ok ? [result.module] : []));
  const merged: ModuleConfig = {
    files: modules.flatMap((m) => m.files),
    endpoints: modules.flatMap((m) => m.endpoints),
    ingresses: modules.flatMap((m) => m.ingresses),
    egresses: modules.flatMap((m) => m.egresses),
  };
  checkUnique(merged, errors);
  return errors.length > 0 ? { ok: false, errors, warnings } : { ok: true, module: merged, warnings };
}

export function fileReferences(module: ModuleConfig): FileReference[] {
  const references: FileReference[] = [];
  for (const endpoint of module.endpoints) {
    if (endpoint.transport.type !== "io.statefun.transports.v1/async") continue;
    const { trustCaCerts, client } = endpoint.transport.tls;
    if (trustCaCerts !== undefined) references.push(trustCaCerts);
    if (client !== undefined) {
      references.push(client.cert, client.key);
      if (client.keyPassword !== undefined) references.push(client.keyPassword);
    }
  }
  return references;
}

/**
 * The yaml parser reports an unclosed quote where the file ends; the useful place is where
 * the quote opened: the last quote character before the end that is not an escape.
 */
function unclosedQuote(text: string, end: number, message: string): number | undefined {
  const quote = message.includes('"') ? '"' : message.includes("'") ? "'" : undefined;
  if (quote === undefined) return undefined;
  for (let i = Math.min(end, text.length) - 1; i >= 0; i--) {
    if (text[i] !== quote) continue;
    if (quote === '"' && text[i - 1] === "\\") continue;
    if (quote === "'" && text[i - 1] === "'") {
      i--;
      continue;
    }
    return i;
  }
  return undefined;
}

function isLegacy(document: Document.Parsed): boolean {
  const contents = document.contents as Node | null;
  return contents !== null && isMap(contents) && contents.has("version");
}

function parseComponent(r: Reader, root: Entry, context: EndpointContext, out: Components): void {
  const document = r.map(root, "a mapping with kind and spec");
  if (document === undefined) return;
  r.checkKeys(document, COMPONENT_KEYS);
  if (!document.entries.has("kind") && document.entries.has("version")) {
    r.error(
      ConfigErrorCode.MISSING_FIELD,
      document.anchor,
      "kind",
      "missing required field kind (a legacy 3.0 `version:` document must be the only document in its file)",
      KIND_EXPECTED,
    );
    return;
  }
  const kindEntry = r.require(document, "kind", KIND_EXPECTED, COMPONENT_KEYS);
  const kind = kindEntry === undefined ? undefined : r.string(kindEntry, KIND_EXPECTED);
  // Without a kind there is no schema to check the spec against.
  if (kindEntry === undefined || kind === undefined) return;
  bindComponent(r, kind, kindEntry, document, context, out);
}

function bindComponent(
  r: Reader,
  kind: string,
  kindEntry: Entry,
  holder: MapView,
  context: EndpointContext,
  out: Components,
  /** A legacy 3.0 ingress's or egress's `meta.id`, which StateFun copies into its spec. */
  legacyId?: Entry,
): void {
  if (!(SUPPORTED_KINDS as readonly string[]).includes(kind)) {
    const suggestion = closestKey(kind, SUPPORTED_KINDS);
    r.error(
      ConfigErrorCode.UNKNOWN_KIND,
      r.where(kindEntry),
      kindEntry.path,
      `unknown kind ${quote(kind)}${suggestion === undefined ? "" : ` (did you mean ${suggestion}?)`}`,
      KIND_EXPECTED,
    );
    return;
  }
  const specEntry = r.require(holder, "spec", "a mapping with the component's settings", COMPONENT_KEYS);
  const given = specEntry === undefined ? undefined : r.map(specEntry, "a mapping with the component's settings");
  if (given === undefined) return;
  const spec: MapView =
    legacyId === undefined || given.entries.has("id")
      ? given
      : { ...given, entries: new Map([...given.entries, ["id", legacyId]]) };
  switch (kind) {
    case Kind.ENDPOINTS_V1_HTTP:
    case Kind.ENDPOINTS_V2_HTTP: {
      const endpoint = parseEndpoint(r, kind, spec, context);
      if (endpoint !== undefined) out.endpoints.push(endpoint);
      return;
    }
    case Kind.PLAYGROUND_INGRESS: {
      const ingress = parsePlaygroundIngress(r, spec);
      if (ingress !== undefined) out.ingresses.push(ingress);
      return;
    }
    case Kind.PLAYGROUND_EGRESS: {
      const egress = parsePlaygroundEgress(r, spec);
      if (egress !== undefined) out.egresses.push(egress);
      return;
    }
    case Kind.KAFKA_INGRESS: {
      const ingress = parseKafkaIngress(r, spec);
      if (ingress !== undefined) out.ingresses.push(ingress);
      return;
    }
    case Kind.KAFKA_EGRESS: {
      const egress = parseKafkaEgress(r, spec);
      if (egress !== undefined) out.egresses.push(egress);
      return;
    }
    case Kind.KINESIS_INGRESS: {
      const ingress = parseKinesisIngress(r, spec);
      if (ingress !== undefined) out.ingresses.push(ingress);
      return;
    }
    case Kind.KINESIS_EGRESS: {
      const egress = parseKinesisEgress(r, spec);
      if (egress !== undefined) out.egresses.push(egress);
      return;
    }
  }
}

/** StateFun 3.0's `meta.kind` / `meta.type` names, translated as LegacyRemoteModuleV30 does. */
const LEGACY_KINDS: ReadonlyMap<string, string> = new Map([
  ["http", Kind.ENDPOINTS_V1_HTTP],
  ["io.statefun.kafka/ingress", Kind.KAFKA_INGRESS],
  ["io.statefun.kafka/egress", Kind.KAFKA_EGRESS],
  ["io.statefun.kinesis/ingress", Kind.KINESIS_INGRESS],
  ["io.statefun.kinesis/egress", Kind.KINESIS_EGRESS],
]);

const LEGACY_SECTIONS = [
  { list: "endpoints", item: "endpoint", kindKey: "kind" },
  { list: "ingresses", item: "ingress", kindKey: "type" },
  { list: "egresses", item: "egress", kindKey: "type" },
] as const;

/**
 * The 3.0 format: `version: "3.0"`, `module.meta.type: remote`, and `module.spec.{endpoints,
 * ingresses, egresses}` lists of `{<item>: {meta: {kind|type, id}, spec}}`, each bound as the
 * component its kind translates to.
 */
function translateLegacy(r: Reader, root: Entry, context: EndpointContext, out: Components): void {
  const document = r.map(root, "a mapping with version and module");
  if (document === undefined) return;
  const versionEntry = r.require(document, "version", '"3.0"');
  const version = versionEntry === undefined ? undefined : r.string(versionEntry, '"3.0"');
  if (versionEntry !== undefined && version !== undefined && version !== "3.0") {
    r.error(
      ConfigErrorCode.INVALID_VALUE,
      r.where(versionEntry),
      versionEntry.path,
      `format version ${quote(version)} is not supported`,
      'version "3.0", or the kind/spec format of StateFun 3.1 and later',
    );
    return;
  }
  const moduleEntry = r.require(document, "module", "a mapping with meta and spec");
  const module = moduleEntry === undefined ? undefined : r.map(moduleEntry, "a mapping with meta and spec");
  if (module === undefined) return;
  const metaEntry = r.require(module, "meta", "a mapping with type: remote");
  const meta = metaEntry === undefined ? undefined : r.map(metaEntry, "a mapping with type: remote");
  const typeEntry = meta === undefined ? undefined : r.require(meta, "type", "remote");
  const type = typeEntry === undefined ? undefined : r.string(typeEntry, "remote");
  if (typeEntry !== undefined && type !== undefined && type.toLowerCase() !== "remote") {
    r.error(
      ConfigErrorCode.INVALID_VALUE,
      r.where(typeEntry),
      typeEntry.path,
      `module type ${quote(type)} is not supported`,
      "remote",
    );
  }
  const specEntry = r.require(module, "spec", "a mapping with endpoints, ingresses and egresses");
  const spec =
    specEntry === undefined ? undefined : r.map(specEntry, "a mapping with endpoints, ingresses and egresses");
  if (spec === undefined) return;
  for (const section of LEGACY_SECTIONS) {
    const listEntry = r.optional(spec, section.list);
    const items = listEntry === undefined ? [] : (r.list(listEntry, `a list of ${section.item}s`) ?? []);
    for (const item of items) {
      const wrapper = r.map(item, `a mapping with ${section.item}: {meta, spec}`);
      const componentEntry = wrapper === undefined ? undefined : r.require(wrapper, section.item, "meta and spec");
      const component =
        componentEntry === undefined ? undefined : r.map(componentEntry, "a mapping with meta and spec");
      const componentMetaEntry = component === undefined ? undefined : r.require(component, "meta", "a mapping");
      const componentMeta =
        componentMetaEntry === undefined ? undefined : r.map(componentMetaEntry, `a mapping with ${section.kindKey}`);
      const kindEntry =
        componentMeta === undefined
          ? undefined
          : r.require(componentMeta, section.kindKey, legacyKindExpected(section.item));
      const legacyKind = kindEntry === undefined ? undefined : r.string(kindEntry, legacyKindExpected(section.item));
      if (component === undefined || kindEntry === undefined || legacyKind === undefined) continue;
      const kind = LEGACY_KINDS.get(legacyKind);
      const id = section.item === "endpoint" ? undefined : r.optional(componentMeta as MapView, "id");
      bindComponent(r, kind ?? legacyKind, kindEntry, component, context, out, id);
    }
  }
}

function legacyKindExpected(item: string): string {
  return item === "endpoint" ? "http" : `a ${item} type, e.g. io.statefun.kafka/${item}`;
}

/** One binding per function type and per namespace; one ingress and egress per id. */
function checkUnique(module: ModuleConfig, errors: ConfigError[]): void {
  const seen = new Map<string, SourceLocation>();
  const claim = (key: string, source: FieldLocation, what: string, expected: string) => {
    const first = seen.get(key);
    if (first === undefined) {
      seen.set(key, source);
      return;
    }
    errors.push(
      new ConfigError(
        ConfigErrorCode.DUPLICATE,
        source,
        source.field,
        `${what} is already bound at ${formatLocation(first)}`,
        expected,
      ),
    );
  };
  for (const endpoint of module.endpoints) {
    const pattern =
      endpoint.functions.kind === "type" ? endpoint.functions.typename : `${endpoint.functions.namespace}/*`;
    claim(
      `function:${pattern}`,
      endpoint.source,
      `function pattern ${pattern}`,
      "each function type and each namespace bound by one endpoint only",
    );
  }
  for (const ingress of module.ingresses) {
    if (ingress.kind === Kind.PLAYGROUND_INGRESS) {
      claim(`ingress:${ingress.kind}`, ingress.source, "the playground ingress", "one playground ingress");
    } else claim(`ingress:${ingress.id}`, ingress.source, `ingress ${ingress.id}`, "each ingress id once");
  }
  for (const egress of module.egresses) {
    claim(`egress:${egress.id}`, egress.source, `egress ${egress.id}`, "each egress id once");
  }
}
