/**
 * Every method of an object, its prototypes' included (a store may be built
 * on another): what a decorator of a store contract wraps, whatever store it
 * is given.
 */
export function methodNamesOf(target: object): Set<string> {
  const names = new Set<string>();
  for (
    let layer: object | null = target;
    layer !== null && layer !== Object.prototype;
    layer = Object.getPrototypeOf(layer) as object | null
  ) {
    for (const name of Object.getOwnPropertyNames(layer)) {
      if (
        name !== "constructor" &&
        typeof (target as Record<string, unknown>)[name] === "function"
      ) {
        names.add(name);
      }
    }
  }
  return names;
}
