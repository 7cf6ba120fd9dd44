import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { StoreUnavailableError } from "../../src/store/store.js";
import { withStoreDeadline } from "../../src/store/store-deadline.js";

/** A store whose `get` answers when `release` is called, counting its calls. */
function slowStore() {
  let release: (value: string) => void = () => {};
  const store = {
    calls: 0,
    get(): Promise<string> {
      store.calls++;
      return new Promise((resolve) => {
        release = resolve;
      });
    },
    fail(): Promise<string> {
      return Promise.reject(new Error("the store's own error"));
    },
  };
  return { store, release: (value: string) => release(value) };
}

const msAgo = (ms: number) => process.hrtime.bigint() - BigInt(ms) * 1_000_000n;

describe("withStoreDeadline", () => {
  test("outside a request: no deadline, the call is the store's", async () => {
    const { store, release } = slowStore();
    const bounded = withStoreDeadline(store, 10, () => undefined);
    const answer = bounded.get();
    await new Promise((resolve) => setTimeout(resolve, 30));
    release("late but fine");
    assert.equal(await answer, "late but fine");
  });

  test("a request whose budget is spent: refused at once, the store not called", async () => {
    const { store } = slowStore();
    const bounded = withStoreDeadline(store, 100, () => msAgo(150));
    await assert.rejects(bounded.get(), (error: unknown) => {
      assert.ok(error instanceof StoreUnavailableError);
      assert.equal(error.message, "the request's store deadline (100 ms) passed");
      return true;
    });
    assert.equal(store.calls, 0);
  });

  test("a call in flight when the budget runs out is abandoned as unavailable", async () => {
    const { store, release } = slowStore();
    const bounded = withStoreDeadline(store, 20, () => process.hrtime.bigint());
    await assert.rejects(bounded.get(), StoreUnavailableError);
    release("too late");
    assert.equal(store.calls, 1);
  });

  test("within the budget: the store's answer and the store's errors, unchanged", async () => {
    const { store, release } = slowStore();
    const bounded = withStoreDeadline(store, 60_000, () => process.hrtime.bigint());
    const answer = bounded.get();
    release("in time");
    assert.equal(await answer, "in time");
    await assert.rejects(bounded.fail(), /the store's own error/);
  });
});
