import { type ParseArgsConfig, parseArgs } from "node:util";
import { usageError } from "./cli-io.js";

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * node:util parseArgs in strict mode, with its errors turned into one usage
 * line: Node's messages carry a second sentence of advice on `--` that does
 * not apply here.
 */
export function parseCommandArgs<O extends Options>(
  args: readonly string[],
  options: O,
  allowPositionals = false,
) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals, strict: true });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const firstSentence = message.split(/\.\s/)[0]?.replace(/\.$/, "") ?? message;
    throw usageError(firstSentence.charAt(0).toLowerCase() + firstSentence.slice(1));
  }
}
