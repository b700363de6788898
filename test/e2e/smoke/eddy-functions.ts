// The smoke command interpreter with Eddy's SDK (served over HTTP or in-process).
import { address, egressMessage, message, statefulFunction, types } from "@eddy/sdk";
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

const SourceCommandType = types.json<SourceCommand>(SOURCE_COMMAND_TYPENAME);
const CommandsType = types.json<Command[]>(COMMANDS_TYPENAME);
const EgressRecord = types.json<{ topic: string; payload: string }>(EGRESS_RECORD_TYPENAME);

export const commandInterpreter = statefulFunction({
  typename: FUNCTION_TYPENAME,
  state: { state: types.int },
  handle(ctx, msg) {
    const commands = msg.is(SourceCommandType) ? msg.as(SourceCommandType).commands : msg.as(CommandsType);
    for (const command of commands) {
      if ("increment" in command) {
        ctx.storage.state = (ctx.storage.state ?? 0) + 1;
      } else if ("send" in command) {
        ctx.send(message(address(FUNCTION_TYPENAME, String(command.send.target)), command.send.commands, CommandsType));
      } else if ("sendAfter" in command) {
        const target = address(FUNCTION_TYPENAME, String(command.sendAfter.target));
        ctx.sendAfter(SEND_AFTER_MS, message(target, command.sendAfter.commands, CommandsType));
      } else if ("sendEgress" in command) {
        ctx.send(egressMessage(EGRESS_ID, { topic: EGRESS_TOPIC, payload: command.sendEgress }, EgressRecord));
      } else {
        const result = { id: Number(ctx.self.id), expected: command.verify, actual: ctx.storage.state ?? 0 };
        ctx.send(
          egressMessage(EGRESS_ID, { topic: VERIFICATION_TOPIC, payload: JSON.stringify(result) }, EgressRecord),
        );
      }
    }
  },
});
