/**
 * A value derived from a reloadable source (the clients or the signing keys),
 * recomputed only when the source hands out a new object: a reload swaps the
 * source's object, so every derived value follows on its next use, and no
 * request pays for the derivation twice.
 */
export function derived<S extends object, D>(source: () => S, derive: (value: S) => D): () => D {
  let seen: S | undefined;
  let value: D | undefined;
  return () => {
    const current = source();
    if (current !== seen) {
      value = derive(current);
      seen = current;
    }
    return value as D;
  };
}
