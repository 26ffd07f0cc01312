/**
 * Training: when the coordinator closes an iteration, read its pairs, run SimPO from the current
 * weights, publish the new weights and evaluate them. Idempotent: a redelivered close for an
 * iteration already trained re-announces the stored result instead of training twice.
 */
import {
  putWeights,
  PROTOCOL_VERSION,
  STREAMS,
  controlEvent,
  encode,
  objectNames,
  publishMessage,
  readRecord,
  readStored,
  stateKeys,
  subjects,
  type EvaluationResult,
  type Member,
  type ModelRecord,
  type PreferencePair,
} from "../protocol/mod.ts";
import { trainingStep } from "./metrics.ts";
import { canTrain, simpoOptionsOf, type PreferenceInput, type SimpoOptions, type TrainResult, type TrainStep } from "./models/contract.ts";
import { seedOf, type PeerContext } from "./context.ts";
import { RoleStoppedError } from "./errors.ts";

const NO_TRAINING: TrainResult = { steps: 0, pairs: 0, lossFirst: 0, lossLast: 0, marginBefore: 0, marginAfter: 0, ms: 0 };

/** The pairs this peer trains on, under the experiment's pairing and training settings. */
export function pairsForPeer(ctx: PeerContext, pairs: PreferencePair[]): PreferencePair[] {
  return pairs.filter((p) => {
    if (p.forPeer !== undefined && p.forPeer !== ctx.peer) return false;
    if (ctx.config.training.pairsFor === "authored-by-others" && p.chosen.author === ctx.peer) return false;
    return true;
  });
}

/** The learning rate of an iteration under the experiment's decay (iterations count from 1). */
export function learningRateOf(t: { learningRate: number; learningRateDecay: number }, iteration: number): number {
  return t.learningRate * t.learningRateDecay ** Math.max(0, iteration - 1);
}

/**
 * The backend's options for training on an iteration, from the experiment's training settings
 * (the one place that maps the settings onto the trainer's options).
 */
export function trainOptionsOf(ctx: PeerContext, iteration: number): SimpoOptions {
  const t = ctx.config.training;
  return simpoOptionsOf(t, { learningRate: learningRateOf(t, iteration), seed: seedOf(ctx.experiment, ctx.peer, iteration) });
}

/** Long work in progress, as the membership record shows it. */
export type Activity = NonNullable<Member["activity"]>;

/**
 * The training role of one actor: trains on each closed iteration, one training at a time in
 * this process, and evaluates; owns the chain of trainings and the activity in progress.
 */
export class Training {
  /** The training in progress or queued last; each caller waits for the one before. */
  private chain?: Promise<void>;
  private current?: Activity;
  private stopped = false;

  constructor(private readonly ctx: PeerContext) {}

  /** The long work in progress (training steps done of total, or evaluating); none when idle. */
  get activity(): Activity | undefined {
    return this.current;
  }

  /** Whether a training is in progress or queued in this process. */
  get busy(): boolean {
    return this.chain !== undefined;
  }

  /**
   * Trains on an iteration once per process at a time: the control inbox and the catch-up
   * (actors/catch-up.ts) may both ask; the second waits for the first and then finds the model
   * record says it is done.
   */
  async train(iteration: number): Promise<void> {
    // Chained, so that any number of callers run one after another, never two at once.
    const mine = (this.chain ?? Promise.resolve()).catch(() => undefined).then(() => this.trainOnce(iteration));
    this.chain = mine;
    try {
      await mine;
    } finally {
      if (this.chain === mine) this.chain = undefined;
    }
  }

  /** Evaluates the current weights and publishes the result for `iteration` (nothing when the peer has no benchmark). */
  async evaluate(iteration: number): Promise<EvaluationResult | undefined> {
    const ctx = this.ctx;
    if (!ctx.evaluator) {
      ctx.log.info({ iteration }, "no benchmark for this peer (pass --bench FILE or --eval-cmd CMD); not evaluating");
      return undefined;
    }
    const t0 = Date.now();
    this.current = { doing: "evaluating", iteration, done: 0, total: 0 };
    const ev = await ctx.cost
      .meter(iteration, "evaluate", () => ctx.evaluator!.evaluate({ iteration, modelVersion: ctx.modelVersion }))
      .finally(() => (this.current = undefined));
    const result: EvaluationResult = {
      v: PROTOCOL_VERSION,
      type: "evaluation",
      experiment: ctx.experiment,
      iteration,
      peer: ctx.peer,
      modelVersion: ctx.modelVersion,
      suites: ev.suites,
      average: ev.average,
      items: ev.items,
      ...(ev.chance ? { chance: ev.chance } : {}),
      ms: Date.now() - t0,
      at: Date.now(),
    };
    await publishMessage(ctx.js, result);
    ctx.log.info({ iteration, average: round(ev.average), suites: Object.fromEntries(Object.entries(ev.suites).map(([k, v]) => [k, round(v)])) }, "evaluated");
    return result;
  }

  /**
   * Starts no more trainings: one queued behind the running one is refused (the inbox hands its
   * close back). The running one is not waited for: the caller disposes the backend, which ends it.
   */
  stop(): void {
    this.stopped = true;
  }

  private async trainOnce(iteration: number): Promise<void> {
    if (this.stopped) throw new RoleStoppedError("training");
    const ctx = this.ctx;
    if (!(await ctx.takesPart(iteration))) {
      ctx.log.info({ iteration }, "not a member of this iteration; not training on it");
      return;
    }
    const record = await readRecord(ctx.state, stateKeys.model(ctx.experiment, ctx.peer), "model");
    if (record && record.iteration >= iteration) {
      // Trained before a crash or by another process of this peer: announce it again (the stream
      // drops the duplicates), since the crash may have come before the announcements went out.
      ctx.log.info({ iteration, version: record.modelVersion }, "already trained on this iteration; re-announcing");
      if (record.iteration === iteration) await this.announce(record);
      return;
    }
    if (!canTrain(ctx.backend)) {
      // A served model (e.g. behind vLLM) with no trainer keeps its weights; the panel still waits
      // for this member's word before the next iteration, so say that training is done.
      ctx.log.info({ iteration }, "this backend does not train; the model stays as it is for the next iteration");
      await this.evaluate(iteration);
      await this.announceDone(iteration, ctx.modelVersion, NO_TRAINING);
      return;
    }
    const { messages, skipped } = await readStored(ctx.nc, STREAMS.pairs.name, subjects.pair(ctx.experiment, iteration), "pair", {
      deadLetterAs: `${ctx.experiment}-${ctx.peer}-train`,
      fence: ctx.fence,
    });
    if (skipped.length) ctx.log.warn({ skipped: skipped.length, first: skipped[0]!.reason }, "dead-lettered invalid stored pairs; not training on them");
    const mine = pairsForPeer(ctx, messages);
    const options = trainOptionsOf(ctx, iteration);
    ctx.log.info({ iteration, pairs: mine.length, learningRate: options.learningRate }, "training with SimPO");
    const inputs: PreferenceInput[] = await Promise.all(
      mine.map(async (p) => ({ prompt: await ctx.promptInput(p.promptId, p.question, p.images), chosen: p.chosen.text, rejected: p.rejected.text })),
    );
    this.current = { doing: "training", iteration, done: 0, total: 0 };
    const onProgress = (done: number, total: number, step?: TrainStep) => {
      trainingStep(done, total, step);
      this.current = {
        doing: "training",
        iteration,
        done,
        total,
        ...(step && Number.isFinite(step.loss) && Number.isFinite(step.margin) ? { loss: step.loss, margin: step.margin } : {}),
      };
    };
    const result =
      inputs.length > 0
        ? await ctx.cost
            .meter(iteration, "train", () => ctx.backend.train!(inputs, options, { experiment: ctx.experiment, peer: ctx.peer, iteration, onProgress }))
            .finally(() => (this.current = undefined))
        : NO_TRAINING;
    const info = await ctx.backend.info();
    const weights = await ctx.backend.exportWeights();
    const object = objectNames.model(ctx.experiment, ctx.peer, info.version);
    // Into this peer's own bucket, with the digest the record carries: loaders refuse other bytes.
    const stored = await putWeights(
      ctx.nc,
      { experiment: ctx.experiment, peer: ctx.peer, object, description: `${ctx.peer} after iteration ${iteration}` },
      weights,
      ctx.config.limits,
    );
    const now = Date.now();
    const model: ModelRecord = {
      v: PROTOCOL_VERSION,
      type: "model",
      experiment: ctx.experiment,
      peer: ctx.peer,
      iteration,
      modelVersion: info.version,
      object,
      bytes: weights.length,
      sha256: stored.sha256,
      bucket: stored.bucket,
      train: result,
      instance: ctx.instance,
      at: now,
    };
    // The record is the commit point: after it, a restart loads these weights and won't retrain.
    await ctx.state.put(stateKeys.model(ctx.experiment, ctx.peer), encode(model));
    ctx.modelVersion = info.version;
    ctx.modelIteration = iteration;
    ctx.log.info(
      {
        iteration,
        version: info.version,
        steps: result.steps,
        loss: [round(result.lossFirst), round(result.lossLast)],
        margin: [round(result.marginBefore), round(result.marginAfter)],
        ...(result.terms ? { terms: Object.fromEntries(Object.entries(result.terms).map(([k, [a, b]]) => [k, [round(a), round(b)]])) } : {}),
        ms: Math.round(result.ms),
      },
      "trained",
    );
    await this.announce(model);
  }

  /** Publishes the new weights, their evaluation and the end of training, in that order. */
  /** Tells the panel this peer is done with an iteration (the coordinator advances on it), with what it cost. */
  private async announceDone(iteration: number, modelVersion: string, result: TrainResult): Promise<void> {
    const ctx = this.ctx;
    await publishMessage(
      ctx.js,
      controlEvent(ctx.experiment, "training_done", { iteration, peer: ctx.peer, modelVersion, result, cost: ctx.cost.of(iteration) }),
    );
  }

  private async announce(model: ModelRecord): Promise<void> {
    const ctx = this.ctx;
    const { iteration } = model;
    await publishMessage(
      ctx.js,
      controlEvent(ctx.experiment, "model_published", {
        iteration,
        peer: ctx.peer,
        modelVersion: model.modelVersion,
        object: model.object,
        bytes: model.bytes,
        at: model.at,
      }),
    );
    // The coordinator advances on training_done, so the evaluation is out before it.
    await this.evaluate(iteration);
    await this.announceDone(iteration, model.modelVersion, model.train ?? NO_TRAINING);
  }
}

const round = (x: number) => Math.round(x * 1000) / 1000;
