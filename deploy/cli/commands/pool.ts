/**
 * `pop pool`: load unlabeled prompts into a server's object store as a named pool: the tiny
 * world's generated ones, or the user's own from a JSONL file (`--from`).
 */
import { NAME_PATTERN, ensureTopology } from "../../../protocol/mod.ts";
import { UsageError, type Flags } from "../args.ts";
import { connectNats } from "../connect.ts";
import { NATS_OPTIONS_HELP } from "../../ops/nats-options.ts";
import { loadTinyPool, poolName } from "../../ops/experiment.ts";
import { MAX_IMAGES_PER_PROMPT, MAX_QUESTION_CHARS, loadPromptFile } from "../../ops/pool-file.ts";
import { ProgressReporter } from "../progress.ts";

export const poolHelp = `pop pool [--seed N] [--count N] [--server URL]
pop pool --from FILE.jsonl [--name NAME] [--replace] [--server URL]

Loads unlabeled prompts (images + question, no answer) into the object store as a named pool,
for experiments whose config names that pool.

The tiny visual world (default): generated prompts, as pool 'tiny-world-<seed>'.
  --seed N             pool seed                                              default: 7
  --count N            number of prompts (iterations x prompts per iteration) default: 768

Your own prompts (--from): one JSON object a line,
  {"images": ["photos/cat.jpg", "/data/dog.png"], "question": "Which animal is bigger?"}
  {"image": "chart.png", "question": "What is the trend?"}
  "question"           required, not empty, at most ${MAX_QUESTION_CHARS} characters
  "image" / "images"   one path, or a list of 1 to ${MAX_IMAGES_PER_PROMPT} paths: every prompt needs an image,
                       these are vision prompts. Relative paths are relative to the JSONL file's
                       folder. PNG or JPEG, any size up to 16384 pixels a side (read from the
                       header), stored byte for byte, once per content (sha256).
  Other keys are an error, so a misspelt key is not silently dropped. Blank lines and lines
  starting with # are skipped. Prompt ids are '<pool name>:<line>' (1-based line number in the
  file): loading the same file again gives the same ids and stores nothing new.
  The whole file is checked before anything is stored; problems are listed as FILE:LINE.
  The file is read a line at a time and the pool stored in chunks of at most 4096 prompts,
  so a file of a million prompts is never held in memory.
  Progress (prompts done of total, rate, time to go) goes to stderr: a bar on a terminal, a
  line every 10 s otherwise.

  --from FILE          the JSONL file
  --name NAME          pool name: 1-64 of a-z 0-9 _ -, starting with a letter or digit
                       default: the file's name without extension, lower-cased, other
                       characters turned into '-' (My Photos.jsonl -> 'my-photos')
  --replace            overwrite a pool of that name that holds other prompts (without it that
                       is an error). A coordinator reads its pool a chunk at a time as it
                       goes, so do not replace the pool of an experiment that is still running.

${NATS_OPTIONS_HELP}`;

export async function runPool(flags: Flags): Promise<void> {
  const from = flags.string("from");
  const seed = flags.int("seed", { min: 0 });
  const count = flags.int("count", { min: 1, max: 1_000_000 });
  const name = flags.string("name");
  const replace = flags.bool("replace");
  const nats = flags.nats();
  const server = nats.servers;
  flags.rejectUnknown();
  if (from !== undefined && (seed !== undefined || count !== undefined)) {
    throw new UsageError("--seed and --count choose the tiny world's pool; they do not go with --from", poolHelp);
  }
  if (from === undefined && (name !== undefined || replace)) throw new UsageError("--name and --replace go with --from FILE", poolHelp);
  if (name !== undefined && !NAME_PATTERN.test(name)) {
    throw new UsageError(`--name must be 1-64 characters of a-z, 0-9, '_' or '-', starting with a letter or digit; got '${name}'`, poolHelp);
  }
  const nc = await connectNats(nats, "pop-pool");
  try {
    await ensureTopology(nc);
    if (from === undefined) {
      const bar = new ProgressReporter("storing the tiny world's prompts", count ?? 768, { unit: "prompts" });
      const pool = await loadTinyPool(nc, seed ?? 7, count ?? 768, "pool", (done, total) => bar.update(done, undefined, total));
      bar.finish();
      process.stdout.write(`pool '${poolName(seed ?? 7)}' holds ${pool.count} prompts on ${server}\n`);
      return;
    }
    const bars = { checking: undefined as ProgressReporter | undefined, storing: undefined as ProgressReporter | undefined };
    const onProgress = (phase: "checking" | "storing", done: number, total: number) => {
      if (phase === "storing" && !bars.storing) bars.checking?.finish();
      (bars[phase] ??= new ProgressReporter(`${phase} ${from}`, total, { unit: "prompts" })).update(done, undefined, total);
    };
    const { file, storedPool, storedImages } = await loadPromptFile(nc, from, { name, replace, onProgress });
    (bars.storing ?? bars.checking)?.finish();
    if (!storedPool && storedImages === 0) process.stderr.write(`pool '${file.name}' already held these prompts; nothing stored\n`);
    const mb = (file.bytes / 1e6).toFixed(1);
    process.stdout.write(`pool '${file.name}' holds ${file.count} prompts (${file.images} images, ${mb} MB) on ${server}\n`);
  } finally {
    await nc.close();
  }
}
