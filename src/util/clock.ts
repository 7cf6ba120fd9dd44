/**
 * Time is passed in, never read ad hoc, so time-window rules (TOTP steps,
 * mfa_token expiry, the failure bucket, DPoP iat) are tested with a fake clock.
 */
export interface Clock {
  nowMs(): number;
}

export const systemClock: Clock = { nowMs: () => Date.now() };

/** A clock tests move by hand. */
export function createFakeClock(startMs = Date.UTC(2026, 0, 1)): Clock & {
  advance(ms: number): void;
  set(ms: number): void;
} {
  let now = startMs;
  return {
    nowMs: () => now,
    advance(ms) {
      now += ms;
    },
    set(ms) {
      now = ms;
    },
  };
}
