/** `pop train`: the tiny model's trainer behind the trainer contract. */
import { ProgressReporter } from "../progress.ts";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { shippedCheckpoint, shippedMembers } from "../../../actors/models/tiny/checkpoints.ts";
import { trainWorkDir } from "../../../actors/trainers/tiny/trainer.ts";
import { formatStepLine } from "../../../actors/trainers/step-lines.ts";
import { UsageError, type Flags } from "../args.ts";

export const trainHelp = `pop train (--base FILE | --peer NAME) [--dir DIR]

Trains a tiny model on one iteration's pairs under the trainer contract
(actors/trainers/contract.ts): reads DIR/settings.json and DIR/pairs.jsonl, starts from the
previous iteration's adapter (settings.init_adapter) or from the base checkpoint, runs the
embedded SimPO, writes the trained checkpoint as the adapter (output_dir/model.bin) and
metrics.json. On a terminal it draws a progress bar; otherwise it prints a line per step,
'step N/TOTAL loss X margin Y', which the actor shows in its heartbeats and keeps as the
training curve. It is what a peer served by 'pop serve' uses as its trainer:

  pop actor --peer ocrserved --backend openai --base-url http://127.0.0.1:8001/v1 --model ocrdumb \\
    --trainer-cmd 'npm run -s pop -- train --peer ocrdumb'

  --dir DIR      the work directory                              default: $POP_TRAIN_DIR
  --base FILE    the base checkpoint (the weights the server started with)
  --peer NAME    ... or a shipped member's checkpoint`;

export async function runTrain(flags: Flags): Promise<void> {
  const dir = flags.string("dir") ?? process.env.POP_TRAIN_DIR;
  const peer = flags.string("peer");
  const base = flags.string("base") ?? (peer ? shippedCheckpoint(peer) : undefined);
  flags.rejectUnknown();
  if (!dir) throw new UsageError("no work directory: pass --dir DIR or set POP_TRAIN_DIR", trainHelp);
  if (!base)
    throw new UsageError(
      peer ? `'${peer}' is not a shipped member (${shippedMembers().join(", ")}); pass --base FILE` : "pass --base FILE or --peer NAME",
      trainHelp,
    );
  if (!existsSync(base)) throw new UsageError(`base checkpoint ${base} does not exist`, trainHelp);
  let bar: ProgressReporter | undefined;
  // A terminal gets a bar; a pipe (the actor running it) a step line per step, the contract's
  // progress lines that the actor reads into heartbeats and the training curve.
  const tty = Boolean(process.stderr.isTTY);
  await trainWorkDir(
    resolve(dir),
    base,
    (line) => {
      bar?.finish();
      process.stderr.write(`pop train: ${line}\n`);
    },
    (done, total, step) =>
      tty
        ? (bar ??= new ProgressReporter("pop train: SimPO", total, { unit: "steps" })).update(
            done,
            step ? `loss ${step.loss.toFixed(3)}, margin ${step.margin.toFixed(3)}` : undefined,
            total,
          )
        : process.stderr.write(`pop train: ${formatStepLine(done, total, step)}\n`),
  );
}
