// Redis Cluster's key → slot mapping (the specification's CRC16/XMODEM with
// hash tags), which the write guard uses to find the key's master, and the
// per-slot tags of the dataset marker.

import assert from "node:assert/strict";
import { test } from "node:test";
import { keySlot, SLOT_COUNT, slotTags } from "../../src/store/redis-slots.js";

test("known slots (CLUSTER KEYSLOT answers the same)", () => {
  assert.equal(keySlot("foo"), 12182);
  assert.equal(keySlot("123456789"), 12739); // CRC16/XMODEM check value 0x31C3
  assert.equal(keySlot("{user1000}.following"), keySlot("user1000"));
  assert.equal(keySlot("{}foo"), keySlot("{}foo")); // an empty tag: the whole key counts
  assert.notEqual(keySlot("{}foo"), keySlot(""));
});

test("one tag per slot, each landing on its slot", () => {
  const tags = slotTags();
  assert.equal(tags.length, SLOT_COUNT);
  tags.forEach((tag, slot) => {
    assert.equal(keySlot(`ts:dataset:{${tag}}`), slot);
  });
});
