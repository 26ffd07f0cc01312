/**
 * The npm-script tools (bench*, simulate:pop, model:table, chaos, demo:seeds) parse their
 * arguments with `pop`'s own parser (./args.ts), so `--help`, unknown options and bad values read
 * the same everywhere: help on stdout with exit 0, a one-line error and the help on stderr with
 * exit 2, never a stack trace.
 */
import { Flags, UsageError } from "./args.ts";

/** Prints a usage error the way `pop` does and ends the process with status 2. */
export function exitWithUsage(script: string, error: UsageError): never {
  process.stderr.write(`npm run ${script}: ${error.message}\n\n${error.help}\n`);
  process.exit(2);
}

/**
 * The script's flags: prints `help` and exits on --help/-h, exits 2 on options the help does
 * not list. `positionals` lets the script take arguments besides its options.
 */
export function scriptFlags(script: string, help: string, options: { positionals?: boolean; argv?: string[] } = {}): Flags {
  const argv = options.argv ?? process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(help + "\n");
    process.exit(0);
  }
  try {
    return new Flags(argv, help, { positionals: options.positionals });
  } catch (error) {
    if (error instanceof UsageError) exitWithUsage(script, error);
    throw error;
  }
}

/** An option's value as parseArgs gave it: a string (or its default), or true/false for a flag. */
type OptionValue<D> = D extends boolean ? boolean : D extends string ? string : string | undefined;

/**
 * Every option `help` lists, read through {@link scriptFlags} with `defaults` for those not given
 * (`undefined`: none; a boolean marks a flag). For scripts that read their options as one
 * record, as they did from util.parseArgs. `defaults` must name exactly the options the help
 * lists, which keeps the two from drifting apart.
 */
export function scriptOptions<D extends Record<string, string | boolean | undefined>>(
  script: string,
  help: string,
  defaults: D,
): { [K in keyof D]: OptionValue<D[K]> } {
  const flags = scriptFlags(script, help);
  const out: Record<string, string | boolean | undefined> = {};
  try {
    for (const [name, fallback] of Object.entries(defaults)) out[name] = typeof fallback === "boolean" ? flags.bool(name) : (flags.string(name) ?? fallback);
    flags.rejectUnknown();
  } catch (error) {
    if (error instanceof UsageError) exitWithUsage(script, error);
    throw error;
  }
  return out as { [K in keyof D]: OptionValue<D[K]> };
}
