/**
 * Reads documentation as a test runs it: the fenced code blocks of a Markdown
 * file (optionally only those between two marker comments), and the JSON
 * documents a shell session printed.
 */
import { readFileSync } from "node:fs";

export interface FencedBlock {
  /** The info string after the opening fence ("sh", "js", "" when none). */
  lang: string;
  /** The block's text, ending with a newline. */
  code: string;
}

/** The text strictly between `<!-- name:start -->` and `<!-- name:end -->`. */
export function markedSection(markdown: string, name: string): string {
  const start = markdown.indexOf(`<!-- ${name}:start -->`);
  const end = markdown.indexOf(`<!-- ${name}:end -->`);
  if (start < 0 || end < start) throw new Error(`no <!-- ${name}:start/end --> markers`);
  return markdown.slice(start, end);
}

/** Every ``` fenced block of `markdown`, in order. */
export function fencedBlocks(markdown: string): FencedBlock[] {
  const blocks: FencedBlock[] = [];
  for (const match of markdown.matchAll(/^```([^\n`]*)\n([\s\S]*?)^```[ \t]*$/gm)) {
    blocks.push({ lang: (match[1] ?? "").trim(), code: match[2] ?? "" });
  }
  return blocks;
}

export function readMarkdown(path: string): string {
  return readFileSync(path, "utf8");
}

/**
 * Every JSON object or array printed in `text`, in order: one per line
 * (`echo "$ANSWER"`) or spread over lines (`buf curl` pretty-prints). A
 * document starts at the beginning of a line with `{` or `[`; lines that are
 * not JSON are skipped.
 */
export function jsonDocuments(text: string): unknown[] {
  const lines = text.split("\n");
  const documents: unknown[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] as string;
    let parsed = false;
    if (line.startsWith("{") || line.startsWith("[")) {
      for (let j = i; j < lines.length && !parsed; j++) {
        try {
          documents.push(JSON.parse(lines.slice(i, j + 1).join("\n")));
          i = j + 1;
          parsed = true;
        } catch {
          // not yet a whole document: take one more line
        }
      }
    }
    if (!parsed) i++;
  }
  return documents;
}
