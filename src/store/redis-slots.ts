/**
 * Redis Cluster's key → slot mapping (CRC16/XMODEM of the key, or of its hash
 * tag, modulo 16384: the Redis Cluster specification, "Keys distribution
 * model"). Written here rather than imported from ioredis's internal
 * dependency: the write guard and the dataset marker need it directly.
 */
const SLOTS = 16384;

const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    table[i] = crc & 0xffff;
  }
  return table;
})();

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) ^ (TABLE[((crc >> 8) ^ byte) & 0xff] ?? 0)) & 0xffff;
  return crc;
}

/** The slot of `key`: only the part inside the first non-empty `{…}` counts. */
export function keySlot(key: string): number {
  const open = key.indexOf("{");
  if (open !== -1) {
    const close = key.indexOf("}", open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  return crc16(Buffer.from(key, "utf8")) % SLOTS;
}

let tagsBySlot: string[] | undefined;

/** A hash tag for every slot (found once, by trying short tags in turn). */
export function slotTags(): readonly string[] {
  if (tagsBySlot !== undefined) return tagsBySlot;
  const tags = new Array<string>(SLOTS);
  let found = 0;
  for (let n = 0; found < SLOTS; n++) {
    const tag = n.toString(36);
    const slot = keySlot(`{${tag}}`);
    if (tags[slot] === undefined) {
      tags[slot] = tag;
      found++;
    }
  }
  tagsBySlot = tags;
  return tags;
}

export const SLOT_COUNT = SLOTS;
