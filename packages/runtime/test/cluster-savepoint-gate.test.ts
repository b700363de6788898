// The commit gate a cluster savepoint holds (cluster/commit-gate.ts). A savepoint's cut is only
// consistent if, once hold() resolves, no commit of the worker is in flight and none starts
// until release(): these tests drive a target whose commits end only when the test says so,
// and check what reaches it, and when hold() resolves, around commits that succeed, are
// refused, or reject.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CommitGate } from "../src/cluster/commit-gate.ts";
import { failure } from "../src/errors.ts";
import { batch, isSettled, ManualTarget, settle } from "./fixtures/savepoint-fakes.ts";

describe("CommitGate", () => {
  it("passes commits through to the target when not held, with the target's answer", async () => {
    const target = new ManualTarget();
    const gate = new CommitGate(target);
    assert.equal(gate.held, false);
    const first = gate.commit(batch(1));
    await settle();
    assert.deepEqual(target.received, [batch(1)]);
    target.end();
    assert.equal(await first, undefined);

    const refusal = failure("commit-aborted", "fenced", true);
    const second = gate.commit(batch(2));
    await settle();
    target.end(refusal);
    assert.deepEqual(await second, refusal);
    assert.deepEqual(target.received, [batch(1), batch(2)]);
  });

  it("resolves hold() only once the commit in flight has ended", async () => {
    const target = new ManualTarget();
    const gate = new CommitGate(target);
    const committing = gate.commit(batch(1));
    await settle();
    assert.equal(target.pending.length, 1);

    const holding = gate.hold();
    assert.equal(gate.held, true);
    assert.equal(await isSettled(holding), false, "hold() resolved while a commit was in flight");
    target.end();
    assert.equal(await committing, undefined);
    assert.equal(await isSettled(holding), true);
  });

  it("resolves hold() at once when no commit is in flight", async () => {
    const gate = new CommitGate(new ManualTarget());
    assert.equal(await isSettled(gate.hold()), true);
    assert.equal(gate.held, true);
  });

  it("keeps commits that arrive while held from the target until release()", async () => {
    const target = new ManualTarget();
    const gate = new CommitGate(target);
    await gate.hold();
    const waiting = gate.commit(batch(1));
    await settle();
    await settle();
    assert.equal(target.received.length, 0, "a commit reached the target while the gate was held");
    assert.equal(await isSettled(waiting), false);

    gate.release();
    assert.equal(gate.held, false);
    await settle();
    assert.deepEqual(target.received, [batch(1)]);
    target.end();
    assert.equal(await waiting, undefined);
  });

  it("is held once when held twice: one release lets commits through", async () => {
    const target = new ManualTarget();
    const gate = new CommitGate(target);
    await gate.hold();
    await gate.hold();
    const waiting = gate.commit(batch(1));
    await settle();
    assert.equal(target.received.length, 0);
    gate.release();
    await settle();
    assert.equal(target.received.length, 1);
    target.end();
    await waiting;
  });

  it("keeps a waiting commit back when the gate is held again before it ran", async () => {
    const target = new ManualTarget();
    const gate = new CommitGate(target);
    await gate.hold();
    const waiting = gate.commit(batch(1));
    await settle();
    gate.release();
    const holdingAgain = gate.hold();
    await settle();
    assert.equal(target.received.length, 0, "the commit slipped between release() and hold()");
    assert.equal(await isSettled(holdingAgain), true);
    gate.release();
    await settle();
    assert.equal(target.received.length, 1);
    target.end();
    await waiting;
  });

  it("passes wantsInboxPositions through", () => {
    assert.equal(new CommitGate(new ManualTarget({ wantsInboxPositions: true })).wantsInboxPositions, true);
    assert.equal(new CommitGate(new ManualTarget({ wantsInboxPositions: false })).wantsInboxPositions, false);
    assert.equal(new CommitGate(new ManualTarget()).wantsInboxPositions, false);
  });

  it("ends the commit in flight on a refusal, so a later hold() resolves", async () => {
    const target = new ManualTarget();
    const gate = new CommitGate(target);
    const committing = gate.commit(batch(1));
    await settle();
    const holding = gate.hold();
    assert.equal(await isSettled(holding), false);
    const refusal = failure("commit-aborted", "rebalance", true);
    target.end(refusal);
    assert.deepEqual(await committing, refusal);
    assert.equal(await isSettled(holding), true);
    gate.release();
    // And a hold after it finds nothing in flight.
    assert.equal(await isSettled(gate.hold()), true);
  });

  it("ends the commit in flight on a rejection, which reaches the caller, so a later hold() resolves", async () => {
    const target = new ManualTarget();
    const gate = new CommitGate(target);
    const committing = gate.commit(batch(1));
    const rejected = assert.rejects(committing, /disk full/);
    await settle();
    const holding = gate.hold();
    assert.equal(await isSettled(holding), false);
    target.pending.shift()?.reject(new Error("disk full"));
    await rejected;
    assert.equal(await isSettled(holding), true);
    await assert.doesNotReject(holding, "hold() passed the commit's rejection on");
    gate.release();
    assert.equal(await isSettled(gate.hold()), true);
  });
});
