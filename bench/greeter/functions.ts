// The greeter both systems run in bench/greeter: per key, count the visits and answer with
// a greeting. Eddy's copy is a stateful function that replies to its caller (the waiting
// HTTP request); Restate's copy (restate-service.ts) is a virtual object.
import { statefulFunction, types } from "@eddy/sdk";

export function greeting(name: string, visits: number): string {
  if (visits === 1) return `Welcome ${name}!`;
  if (visits === 2) return `Welcome back ${name}!`;
  return visits === 3 ? `third time's the charm, ${name}!` : `Happy to see you once again, ${name}! (visit ${visits})`;
}

export const greeter = statefulFunction({
  typename: "bench/greeter",
  state: { visits: types.int },
  handle(ctx, msg) {
    const visits = (ctx.storage.visits ?? 0) + 1;
    ctx.storage.visits = visits;
    ctx.reply(greeting(msg.as(types.string), visits), types.string);
  },
});
