/**
 * The README's shell commands, as a reader would type them, and the one rewrite that lets a test
 * run them beside other tests (test/deploy/readme-recipes.test.ts).
 *
 * A command is a line of a ```sh (bash, shell, console) block, with `\` continuations joined, the
 * trailing comment dropped and runs of spaces made one; a trailing `&` marks it as started in the
 * background. Comment-only lines are prose, not commands.
 *
 * The rewrite (`localize`) changes only where a command listens or writes outside its folder:
 * - `nats-server -js` listens on the test's private port, loopback only, its store in the test's folder;
 * - a port the README names (`--port 8001`, `127.0.0.1:8001`) becomes its private stand-in, and
 *   `pop dashboard`, which listens on 8484 by default, is given its private `--port`;
 * - `/tmp/` becomes the test's folder;
 * - `pop` reaches the private server through NATS_URL (its documented default), not by a rewrite.
 * Relative paths stay: the commands run in a copy of the repository's tracked files.
 */

/** One command of the README. */
export interface ReadmeCommand {
  /** The command as written, normalised (continuations joined, comment and `&` dropped). */
  text: string;
  /** Started in the background (a trailing `&`). */
  background: boolean;
  /** 1-based line of the README where it starts. */
  line: number;
}

const FENCE_OPEN = /^```(sh|bash|shell|console)\s*$/;
const FENCE_CLOSE = /^```\s*$/;

/** The command of one line without its trailing comment (a `#` after a space, outside quotes). */
function dropComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i);
  }
  return line;
}

/** Every shell command of a markdown document, in order. */
export function readmeCommands(markdown: string): ReadmeCommand[] {
  const lines = markdown.split("\n");
  const out: ReadmeCommand[] = [];
  let inBlock = false;
  let pending: { text: string; line: number } | undefined;
  lines.forEach((raw, i) => {
    if (!inBlock) {
      inBlock = FENCE_OPEN.test(raw);
      return;
    }
    if (FENCE_CLOSE.test(raw)) {
      inBlock = false;
      return;
    }
    const continued = /\\\s*$/.test(raw);
    const part = dropComment(continued ? raw.replace(/\\\s*$/, "") : raw).trim();
    pending = pending ? { text: `${pending.text} ${part}`, line: pending.line } : { text: part, line: i + 1 };
    if (continued) return;
    let text = pending.text.replace(/\s+/g, " ").trim();
    const line = pending.line;
    pending = undefined;
    if (!text) return;
    const background = text.endsWith("&") && !text.endsWith("&&");
    if (background) text = text.slice(0, -1).trim();
    out.push({ text, background, line });
  });
  return out;
}

/** Where a test runs the README's commands. */
export interface Locale {
  /** The private nats-server's port. */
  natsPort: number;
  /** The README's ports -> their private stand-ins. */
  ports: Record<number, number>;
  /** The private port for `pop dashboard`. */
  dashboardPort: number;
  /** The test's folder, standing in for /tmp. */
  tmp: string;
}

/** The command as the test runs it (see the file's comment for the rule). */
export function localize(command: string, at: Locale): string {
  let s = command;
  if (/^nats-server -js\b/.test(s)) s = s.replace(/^nats-server -js\b/, `nats-server -js -a 127.0.0.1 -p ${at.natsPort} -sd ${at.tmp}/jetstream`);
  for (const [from, to] of Object.entries(at.ports)) s = s.replace(new RegExp(`(--port |:)${from}\\b`, "g"), `$1${to}`);
  if (/\bpop -- dashboard\b/.test(s)) s += ` --port ${at.dashboardPort}`;
  return s.replace(/(^|[\s='"])\/tmp\//g, `$1${at.tmp}/`);
}
