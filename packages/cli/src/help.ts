// What `eddy --help` and `eddy <command> --help` print. The index lists each command in a
// line or two; a command's own text is its synopsis, what it does and every option. Both
// live here so that the index and the commands' texts are kept side by side.

export const INDEX = `Usage: eddy <command> [options]

Commands:
  run <module.yaml>...                  the embedded runtime on StateFun module files
  dev <functions.ts> --module <yaml>    the runtime with your TypeScript functions in-process
  serve <functions.ts>                  serve your functions over HTTP (StateFun 3.x protocol)
  send <namespace/type/id> <value>      send a message through a running Eddy's ingress
  dead-letters list|show|replay|discard what the failure policy set aside, putting it back
  state get|put|delete|list             a running Eddy's state, address by address
  top                                   a running Eddy's throughput, latency and backlog, live
  checkpoints list|verify|restore|create
                                        checkpoints in blob storage (file, S3, GCS)
  savepoint <NAME>                      take a named checkpoint that retention never deletes,
                                        of an Eddy or (--cluster) of a whole cluster

Run "eddy <command> --help" for a command's options.

Options:
  -h, --help     Show this help
  -v, --version  Show the version
`;

const CHECKPOINT_FLAGS = `  --checkpoints URL         take incremental checkpoints of all state to blob storage:
                            file:///dir, s3://bucket/prefix?endpoint=…, gs://bucket/prefix;
                            started on an empty state directory, Eddy restores the newest
                            one that verifies
  --checkpoint-interval D   how often (default 10s; 0: only on demand)
  --checkpoint-retain N     how many checkpoints to keep (default 3)
  --ack-after-checkpoint    HTTP ingress answers only once a checkpoint holds the message
                            (it survives the loss of the disk)`;

const THREADS_FLAG = `  --threads N               run the partitions on N worker threads over one store (default
                            1: all on the main thread). Not yet with Kafka or Kinesis
                            connectors or the admin listener (left out unless asked for):
                            those start with --threads 1`;

const RUNTIME_FLAGS = `  --state-dir DIR           durable state (default ./eddy-state)
  --host H                  ingress, egress and admin listen on H (default 127.0.0.1)
  --token-file F            ingress, egress and admin answer only Authorization: Bearer
                            <token>, the file's content (or EDDY_TOKEN)
  --admin-port P            the admin listener's port: Prometheus metrics at /metrics, the
                            admin API under /v1/, the web UI at /ui/ (default 8093, or
                            EDDY_ADMIN_PORT; 0: any free port; off: none)
  --retention D             how long idempotency keys and request-reply answers are kept
                            (default 24h)
  --ingress-body-limit S    the largest HTTP ingress request body (default 4MiB, at most
                            32MiB, what a function call carries); larger ones get 413
  --memory-budget S         most bytes of work taken in and not finished (messages waiting
                            or running, egress records not yet sent; default 24MiB): at
                            the budget Kafka and Kinesis reading pauses and the HTTP
                            ingress holds requests, while functions drain what is in
  --ingress-hold D          how long the HTTP ingress holds a request that finds no room
                            before it answers 503 with Retry-After (default 10s)
  --log-level L             the least level logged: debug, info (default, or
                            EDDY_LOG_LEVEL), warn or error; the log is JSON lines on
                            stderr, readable lines when stderr is a terminal`;

const USAGES: Readonly<Record<string, string>> = {
  run: `Usage: eddy run <module.yaml>... [options]
       eddy run <module.yaml>... --cluster kafka://HOST:PORT[,HOST:PORT…]/NAME --checkpoints URL [options]

Runs the embedded runtime on StateFun module files: durable state, exactly-once across
crashes. An invalid module stops it with every error as file:line:column. With --cluster,
runs one worker of a cluster: the workers share the partitions through Kafka.

Options:
${RUNTIME_FLAGS}
  --failure-policy P        when a function keeps failing: retry (default, forever with
                            backoff), dead-letter (set the batch aside, see eddy
                            dead-letters) or stop
  --port-offset N           add N to every port the module names or defaults to (ingress,
                            egress, admin), to run several Eddys from one module file on one
                            machine
${THREADS_FLAG}
${CHECKPOINT_FLAGS}
  -h, --help                show this help

Cluster:
  --cluster URL             kafka://HOST:PORT[,HOST:PORT…]/NAME: join cluster NAME on these
                            brokers (topics eddy.NAME.inbox and eddy.NAME.changelog, group
                            eddy.NAME); needs --checkpoints on a store every worker reaches
  --worker-id ID            this worker's identity in the group (default: the one kept in
                            <state-dir>/worker-id, made on the first start); a worker
                            restarted with the same id gets its partitions back
  --advertise URL           the http(s) URL other workers reach this worker's ingress at
                            (default http://127.0.0.1:<playground ingress port + offset>,
                            or the --host address when it is not 0.0.0.0 or ::)
  --admin-advertise URL     the http(s) URL other workers reach this worker's admin
                            listener at, to answer the admin API for the whole cluster
                            (default: --advertise's host, at the admin listener's port)
  --cluster-config FILE     Kafka client properties for the cluster's connection, as a Java
                            .properties file (security.protocol, ssl.*, sasl.*)
`,
  dev: `Usage: eddy dev <functions.ts> --module <module.yaml> [options]

The runtime with your TypeScript functions (Eddy SDK) in-process, no HTTP hop; saving the
functions file reloads it.

Options:
  -m, --module F            a module file for the ingresses and egresses (repeatable)
${RUNTIME_FLAGS}
${THREADS_FLAG}
${CHECKPOINT_FLAGS}
  -h, --help                show this help
`,
  serve: `Usage: eddy serve <functions.ts> [options]

Serves the stateful functions a module exports over HTTP, speaking the StateFun 3.x
protocol, until SIGINT or SIGTERM.

Options:
  -p, --port N              port (default 8000; 0: any free port)
  --host H                  address to listen on (default 127.0.0.1)
  -h, --help                show this help
`,
  send: `Usage: eddy send <namespace/type/id> <value> [options]

Sends a message through a running Eddy's HTTP ingress. The value is a string, or with
--type a value of type T (42, true, JSON).

Options:
  -t, --type T              the value's type (io.statefun.types/int, example/Request, …)
  -w, --wait S              wait up to S seconds for the function's reply and print it
  --idempotency-key K       deliver once however often this is sent with the same key
  --ingress URL             the ingress (default http://127.0.0.1:8090/)
  --token-file F            send Authorization: Bearer <the file's content> (or EDDY_TOKEN)
  -h, --help                show this help
`,
  "dead-letters": `Usage: eddy dead-letters list [--state-dir DIR | --admin URL] [--json]
       eddy dead-letters show <id> [--state-dir DIR | --admin URL]
       eddy dead-letters replay|discard <id>... | --all [--state-dir DIR | --admin URL]
       eddy dead-letters list|replay … --cluster kafka://HOST:PORT/NAME [--cluster-config FILE]
       eddy dead-letters list|replay … --worker URL [--worker URL]…

list: what the failure policy set aside, oldest first. Each dead letter has an id,
<partition>-<epoch>-<count> such as 2-1-5, unique in the state directory. show: one letter
whole, as JSON (its messages' arguments in base64). replay: deliver the letters named (or
--all) again. discard: delete them. Records an ingress could not route are listed but cannot
be replayed.

With Eddy running on DIR (or at --admin URL) every action goes through it: a replay is
delivered at once, and --all shows its progress. With Eddy stopped, list and show read DIR,
replay queues the letters for delivery at Eddy's next start, and discard is refused.

In a cluster the running workers list and replay the letters of the partitions they run
(a worker's state directory is only a cache, and is refused): the command finds them in the
cluster's group (or asks the --worker URLs), and a replay is delivered at once, in a commit
of the letter's partition. A worker that does not answer is named, and the command fails.

Options:
  --state-dir DIR           the state directory (default ./eddy-state)
  --admin URL               a running Eddy's admin listener (http://HOST:8093), instead of
                            the control socket in DIR
  --json                    list as JSON: each letter with its id and partition (from a
                            stopped Eddy's directory, the whole stored record)
  --all                     replay every replayable letter, or discard every letter
  --cluster URL             the cluster's brokers and name, as eddy run --cluster takes them
  --cluster-config FILE     Kafka client properties for reaching the cluster (security)
  --worker URL              a worker's ingress URL, instead of finding them through Kafka
  --token-file F            the bearer token of --admin or of the workers (or EDDY_TOKEN)
  -h, --help                show this help
`,
  state: `Usage: eddy state get <namespace/type/id> [--json]
       eddy state put <namespace/type/id> <state-name> <value> [--base64] [--typename T]
       eddy state delete <namespace/type/id> <state-name>
       eddy state list <namespace/type> [--prefix P] [--limit N | --all] [--after ID]

A running Eddy's state, through its admin API: the control socket in DIR on this machine,
or --admin URL. An address is namespace/type/id: the first two parts are the function type,
the rest, slashes and all, is the id.

get: every state value of the address (JSON, or base64 for bytes), its backlog and what is
in flight. put: write one value; it is durable when the command returns, and the function's
next invocation sees it. The value is read as JSON when it parses (42, true, {"a": 1},
'"quoted"'), else as a string (hello); the state's type must be able to hold it. With
--base64 the value is the bytes, base64-encoded. delete: remove one value. list: the ids of
the type that hold state, sorted, 50 unless --limit or --all.

Options:
  --state-dir DIR           the state directory of the Eddy to ask (default ./eddy-state)
  --admin URL               a running Eddy's admin listener (http://HOST:8093) instead
  --token-file F            the admin listener's bearer token (or EDDY_TOKEN)
  --json                    get, put, list: print the API's JSON answer
  --base64                  put: the value is base64-encoded bytes
  --typename T              put: the state's type, checked against the declared one
  --prefix P                list: only ids starting with P
  --limit N                 list: at most N ids (default 50)
  --after ID                list: the ids after ID (for the next page)
  --all                     list: every id
  -h, --help                show this help
`,
  top: `Usage: eddy top [--state-dir DIR | --admin URL] [--interval-ms N] [--once]

A live view of a running Eddy: per function type, messages and failures per second, latency
(p50, p99 over the last 10 s), backlog, in flight, paused and health; and the totals: messages,
ingress requests and egress records per second, commit latency and Kafka lag. q or Ctrl-C
ends it.

Options:
  --state-dir DIR           the state directory of the Eddy to watch (default ./eddy-state)
  --admin URL               a running Eddy's admin listener (http://HOST:8093) instead
  --token-file F            the admin listener's bearer token (or EDDY_TOKEN)
  --interval-ms N           how often to ask (default 1000)
  --once                    print one snapshot (two reads, N ms apart, for the rates) as
                            plain text, and exit
  -h, --help                show this help
`,
  checkpoints: `Usage: eddy checkpoints list --checkpoints URL [--json]
       eddy checkpoints verify [ID|NAME] --checkpoints URL
       eddy checkpoints restore <ID|NAME> --checkpoints URL [--state-dir DIR]
       eddy checkpoints restore <NAME> --checkpoints URL --cluster kafka://HOST:PORT/NEW [--cluster-config FILE]
       eddy checkpoints create [--state-dir DIR] [--checkpoints URL]

list: the checkpoints and savepoints a store holds (a cluster's savepoints too). verify: that
they would restore (every file's size and SHA-256). restore: one into an empty state
directory; with --cluster, a savepoint of a cluster seeds the new cluster NEW (its topics must
never have been written), whose workers then start with eddy run --cluster. create: take a
checkpoint now, through the Eddy running on DIR, or directly when none is.

Options:
  --checkpoints URL         the store: file:///dir, s3://bucket/prefix?endpoint=…,
                            gs://bucket/prefix
  --state-dir DIR           the state directory (default ./eddy-state)
  --cluster URL             restore: the new cluster to seed, kafka://HOST:PORT[,HOST:PORT…]/NAME
  --cluster-config FILE     Kafka client properties for reaching it (security)
  --json                    list as JSON
  -h, --help                show this help
`,
  savepoint: `Usage: eddy savepoint <NAME> [--state-dir DIR] [--checkpoints URL]
       eddy savepoint <NAME> --cluster kafka://HOST:PORT[,HOST:PORT…]/CLUSTER [--cluster-config FILE]
                             [--token-file F]

Takes a named checkpoint (never deleted by retention) now, through the Eddy running on
DIR, or directly when none is. Restore it with eddy checkpoints restore <NAME>.

With --cluster, takes a savepoint of the whole cluster: the command finds the running
workers in the cluster's group and asks one of them over its admin API (POST /v1/savepoints),
which asks all the others. Every worker holds its commits while the cut is read, and the
workers write it to the --checkpoints store they share. Seed a new cluster from it with
eddy checkpoints restore <NAME> --cluster kafka://HOST:PORT/NEW-NAME.

Options:
  --checkpoints URL         the store (needed when no Eddy runs on DIR)
  --state-dir DIR           the state directory (default ./eddy-state)
  --cluster URL             the cluster's brokers and name, as eddy run --cluster takes them
  --cluster-config FILE     Kafka client properties for reaching the cluster (security)
  --token-file F            the bearer token of the workers' admin API (or EDDY_TOKEN)
  -h, --help                show this help
`,
};

/** A command's own usage text, or undefined for a command that has none. */
export function commandUsage(command: string): string | undefined {
  return USAGES[command];
}

/**
 * Whether `args` ask for help: -h or --help anywhere before a `--`. (Asked before the
 * command parses them, so that help works whatever else is on the line.)
 */
export function asksForHelp(args: readonly string[]): boolean {
  for (const arg of args) {
    if (arg === "--") return false;
    if (arg === "-h" || arg === "--help") return true;
  }
  return false;
}
