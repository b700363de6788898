// Functions that answer HTTP requests (Eddy's SDK): replying is sending to the caller,
// which for a request that waits is the request's reply address.
import { address, message, statefulFunction, types } from "@eddy/sdk";

export const Profile = types.json<{ id: string; visits: number }>("rr/Profile");

export function greeting(name: string, visits: number): string {
  if (visits === 1) return `Welcome ${name}!`;
  if (visits === 2) return `Welcome back ${name}!`;
  return visits === 3 ? `third time's the charm, ${name}!` : `Hello again ${name} (visit ${visits})`;
}

/** Greets by its id, counting visits; a message that does not wait for a reply only counts. */
export const greeter = statefulFunction({
  typename: "rr/greeter",
  state: { visits: types.int },
  handle(ctx) {
    const visits = (ctx.storage.visits ?? 0) + 1;
    ctx.storage.visits = visits;
    if (ctx.caller !== undefined) ctx.reply(greeting(ctx.self.id, visits), types.string);
  },
});

/** Answers with JSON. */
export const profile = statefulFunction({
  typename: "rr/profile",
  state: { visits: types.int },
  handle(ctx) {
    const visits = (ctx.storage.visits ?? 0) + 1;
    ctx.storage.visits = visits;
    ctx.reply({ id: ctx.self.id, visits }, Profile);
  },
});

/** Answers 1.5 s later, from a delayed message to itself: the reply address waits in state meanwhile. */
export const slow = statefulFunction({
  typename: "rr/slow",
  state: { count: types.int, waiting: types.string },
  handle(ctx, msg) {
    if (ctx.caller?.typename === "eddy.ingress/reply") {
      ctx.storage.count = (ctx.storage.count ?? 0) + 1;
      ctx.storage.waiting = ctx.caller.id;
      ctx.sendAfter(1500, message(ctx.self, "later", types.string));
      return;
    }
    if (msg.as(types.string) !== "later" || ctx.storage.waiting === undefined) return;
    ctx.send(message(address("eddy.ingress/reply", ctx.storage.waiting), `done ${ctx.storage.count}`, types.string));
    ctx.storage.waiting = undefined;
  },
});

/** Counts and answers with the count as an int (io.statefun.types/int reads as text). */
export const counter = statefulFunction({
  typename: "rr/counter",
  state: { count: types.int },
  handle(ctx) {
    const count = (ctx.storage.count ?? 0) + 1;
    ctx.storage.count = count;
    ctx.reply(count, types.int);
  },
});

export const functions = [greeter, profile, slow, counter];
