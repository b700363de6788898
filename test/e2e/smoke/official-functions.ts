// The smoke command interpreter with the official StateFun JS SDK (apache-flink-statefun
// 3.3.0), served with its own node:http handler: proof that Eddy runs existing functions.
import { createServer } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import {
  COMMANDS_TYPENAME,
  type Command,
  EGRESS_ID,
  EGRESS_RECORD_TYPENAME,
  EGRESS_TOPIC,
  FUNCTION_TYPENAME,
  SEND_AFTER_MS,
  SOURCE_COMMAND_TYPENAME,
  type SourceCommand,
  VERIFICATION_TOPIC,
} from "./commands.ts";

interface OfficialContext {
  self: { id: string };
  storage: { state: number | null };
  send(message: unknown): void;
  sendAfter(delayMs: number, message: unknown): void;
}
interface OfficialMessage {
  is(type: unknown): boolean;
  as(type: unknown): unknown;
}

const require = createRequire(import.meta.url);
const { StateFun, messageBuilder, egressMessageBuilder, kafkaEgressMessage } = require("apache-flink-statefun");

const SourceCommandType = StateFun.jsonType(SOURCE_COMMAND_TYPENAME);
const CommandsType = StateFun.jsonType(COMMANDS_TYPENAME);
const EgressRecord = StateFun.jsonType(EGRESS_RECORD_TYPENAME);

/**
 * Serves the interpreter on `port` (0: any). Its egress and verification records go to the
 * playground egress, or with `kafkaEgress` (an egress id) to that Kafka egress, keyed by the
 * instance, each topic's payload text as the record's value.
 */
export async function serveOfficial(
  port: number,
  options: { readonly kafkaEgress?: string } = {},
): Promise<{ url: string; close(): Promise<void> }> {
  const { kafkaEgress } = options;
  const egress = (topic: string, payload: string, key: string) =>
    kafkaEgress === undefined
      ? egressMessageBuilder({ typename: EGRESS_ID, value: { topic, payload }, valueType: EgressRecord })
      : kafkaEgressMessage({ typename: kafkaEgress, topic, key, value: payload });
  const statefun = new StateFun();
  statefun.bind({
    typename: FUNCTION_TYPENAME,
    specs: [{ name: "state", type: StateFun.intType() }],
    fn(context: OfficialContext, message: OfficialMessage) {
      const commands = message.is(SourceCommandType)
        ? (message.as(SourceCommandType) as SourceCommand).commands
        : (message.as(CommandsType) as Command[]);
      for (const command of commands) {
        if ("increment" in command) {
          context.storage.state = (context.storage.state ?? 0) + 1;
        } else if ("send" in command) {
          const id = String(command.send.target);
          context.send(
            messageBuilder({ typename: FUNCTION_TYPENAME, id, value: command.send.commands, valueType: CommandsType }),
          );
        } else if ("sendAfter" in command) {
          const id = String(command.sendAfter.target);
          const delayed = messageBuilder({
            typename: FUNCTION_TYPENAME,
            id,
            value: command.sendAfter.commands,
            valueType: CommandsType,
          });
          context.sendAfter(SEND_AFTER_MS, delayed);
        } else if ("sendEgress" in command) {
          context.send(egress(EGRESS_TOPIC, command.sendEgress, context.self.id));
        } else {
          const result = { id: Number(context.self.id), expected: command.verify, actual: context.storage.state ?? 0 };
          context.send(egress(VERIFICATION_TOPIC, JSON.stringify(result), context.self.id));
        }
      }
    },
  });
  const server = createServer(statefun.handler());
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}/`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
