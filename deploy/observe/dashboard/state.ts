/**
 * What `pop dashboard` shows beyond `pop watch`'s view: who sent what to whom, every member's
 * scores per suite and iteration, training curves, and the pairs with every judge's scores on
 * both answers. Pure: fed messages and member records, it answers the page's requests.
 */
import { authorOfCandidate, CRITERIA, type ImageRef, type Member, type Message, type PreferencePair } from "../../../protocol/mod.ts";
import { expectedCounts, WatchState } from "../watch/state.ts";
import { gradePair, PrecisionTally } from "../precision/tally.ts";
import type { TruthOf } from "../precision/truth.ts";

/** The most pairs kept for the browser (the oldest go first); the streams keep them all. */
export const MAX_PAIRS = 20_000;
/** Verdicts are kept for this many prompts (the latest), enough for every pair kept above. */
export const MAX_VERDICT_PROMPTS = 50_000;
/** Points kept per training curve. */
const MAX_CURVE_POINTS = 2_000;

type Scores = Record<(typeof CRITERIA)[number], number>;

/** One judge's scores on one candidate. */
interface JudgeScores {
  judge: string;
  author: string;
  candidateId: string;
  likert?: Scores;
  abstained?: string;
}

/** A pair as the browser lists it. */
export interface PairRow {
  pairId: string;
  iteration: number;
  promptId: string;
  question: string;
  suite?: string;
  /** `right`: whether the answer is right, where the truth of the prompt is known (observation only). */
  chosen: { author: string; text: string; score: number; right?: boolean };
  rejected: { author: string; text: string; score: number; right?: boolean };
  margin: number;
  judges: string[];
  forPeer?: string;
  images: number;
}

/** A pair with every judge's scores on its two answers (other candidates of the prompt included). */
export interface PairDetail extends PairRow {
  verdicts: { chosen: JudgeScores[]; rejected: JudgeScores[] };
}

/** Filters of the pair browser. */
export interface PairQuery {
  iteration?: number;
  /** Pairs whose chosen or rejected answer is this member's, or that are for this member. */
  member?: string;
  suite?: string;
  minMargin?: number;
  maxMargin?: number;
  offset?: number;
  limit?: number;
}

export interface TrainingPoint {
  step: number;
  total: number;
  loss?: number;
  margin?: number;
}

export class DashboardState {
  readonly watch: WatchState;
  private readonly pairs = new Map<string, PreferencePair>();
  private readonly verdicts = new Map<string, JudgeScores[]>();
  /** Messages per edge (`from\tto\tkind`) that name both ends. */
  private readonly flows = new Map<string, number>();
  /** Candidate batches per iteration and author; pairs per iteration and member they are for ("" for all). */
  private readonly candidates = new Map<number, Map<string, number>>();
  private readonly pairCounts = new Map<number, Map<string, number>>();
  private readonly suites = new Map<number, Map<string, Record<string, number>>>();
  private readonly curves = new Map<string, { peer: string; iteration: number; points: TrainingPoint[] }>();
  private readonly trainDone = new Map<
    string,
    {
      peer: string;
      iteration: number;
      lossFirst: number;
      lossLast: number;
      marginBefore: number;
      marginAfter: number;
      steps: number;
      ms: number;
      curve?: [number, number, number][];
    }
  >();
  /** Pair precision of every pair seen (kept for browsing or not), where its truth is known. */
  private readonly precision = new PrecisionTally();

  /**
   * @param suiteOf the suite a prompt's question belongs to, where the panel's world can tell
   *   (undefined: the browser files it under no suite)
   * @param truthOf the right answer of a prompt, where it is known (the tiny world's pool, a
   *   benchmark file): pairs are graded against it for the marks and the live pair precision
   */
  constructor(
    readonly experiment: string,
    private readonly suiteOf: (question: string) => string | undefined = () => undefined,
    private readonly truthOf: TruthOf = () => undefined,
  ) {
    this.watch = new WatchState(experiment);
  }

  add(m: Message, at: number): void {
    this.watch.add(m, at);
    switch (m.type) {
      case "candidates":
        // Sent to every other member of the iteration (counted out in snapshot(): the streams
        // are read side by side, so the iteration's opening may arrive after its answers).
        this.count(this.candidates, m.iteration, m.author);
        break;
      case "verdict": {
        for (const a of m.authors) this.flow(m.judge, a, "verdicts");
        const list = this.verdicts.get(m.promptId) ?? [];
        if (!this.verdicts.has(m.promptId)) {
          this.verdicts.set(m.promptId, list);
          if (this.verdicts.size > MAX_VERDICT_PROMPTS) this.verdicts.delete(this.verdicts.keys().next().value!);
        }
        for (const s of m.scores) {
          // Redelivered verdicts replace, not add.
          const i = list.findIndex((x) => x.judge === m.judge && x.candidateId === s.candidateId);
          const row: JudgeScores = {
            judge: m.judge,
            author: authorOfCandidate(m.promptId, s.candidateId) ?? "",
            candidateId: s.candidateId,
            ...(s.likert ? { likert: s.likert as Scores } : { abstained: s.abstained ?? "" }),
          };
          if (i >= 0) list[i] = row;
          else list.push(row);
        }
        break;
      }
      case "pair": {
        if (!this.pairs.has(m.pairId)) {
          this.count(this.pairCounts, m.iteration, m.forPeer ?? "");
          const grade = gradePair(m, this.truthOf);
          if (grade) this.precision.add(m.iteration, grade);
        }
        this.pairs.set(m.pairId, m);
        if (this.pairs.size > MAX_PAIRS) this.pairs.delete(this.pairs.keys().next().value!);
        break;
      }
      case "evaluation": {
        const s = this.suites.get(m.iteration) ?? new Map<string, Record<string, number>>();
        s.set(m.peer, { ...m.suites, average: m.average });
        this.suites.set(m.iteration, s);
        this.flow(m.peer, "coordinator", "evaluations");
        break;
      }
      case "control":
        if (m.event === "training_done") {
          this.trainDone.set(`${m.peer}\t${m.iteration}`, { peer: m.peer, iteration: m.iteration, ...m.result });
          this.flow(m.peer, "coordinator", "training_done");
        }
        break;
    }
  }

  member(key: string, record: Member | undefined): void {
    this.watch.member(key, record);
    const a = record?.activity;
    if (!record || a?.doing !== "training" || a.total === 0) return;
    const id = `${record.peer}\t${a.iteration}`;
    let c = this.curves.get(id);
    if (!c) this.curves.set(id, (c = { peer: record.peer, iteration: a.iteration, points: [] }));
    const last = c.points.at(-1);
    if (last?.step === a.done) return;
    c.points.push({ step: a.done, total: a.total, ...(a.loss !== undefined ? { loss: a.loss } : {}), ...(a.margin !== undefined ? { margin: a.margin } : {}) });
    if (c.points.length > MAX_CURVE_POINTS) c.points.splice(0, c.points.length - MAX_CURVE_POINTS);
  }

  private flow(from: string, to: string, kind: string, n = 1, into = this.flows): void {
    const k = `${from}\t${to}\t${kind}`;
    into.set(k, (into.get(k) ?? 0) + n);
  }

  private count(m: Map<number, Map<string, number>>, iteration: number, who: string): void {
    const c = m.get(iteration) ?? new Map<string, number>();
    c.set(who, (c.get(who) ?? 0) + 1);
    m.set(iteration, c);
  }

  /** Every edge's count: the ones counted as they came, and those that need the iteration's panel. */
  private allFlows(): Map<string, number> {
    const out = new Map(this.flows);
    for (const it of this.watch.iterations.values()) {
      for (const p of it.peers) this.flow("coordinator", p, "prompts", it.prompts, out);
      for (const [author, n] of this.candidates.get(it.iteration) ?? []) for (const p of it.peers) if (p !== author) this.flow(author, p, "candidates", n, out);
      for (const [forPeer, n] of this.pairCounts.get(it.iteration) ?? [])
        for (const p of forPeer ? [forPeer] : it.peers) this.flow("coordinator", p, "pairs", n, out);
    }
    return out;
  }

  /** Everything the page's live view shows, as JSON-ready data. */
  snapshot(now: number) {
    const w = this.watch;
    const members = [...w.members.values()]
      .sort((a, b) => a.peer.localeCompare(b.peer))
      .map((m) => ({
        peer: m.peer,
        instance: m.instance,
        backend: m.backend,
        modelVersion: m.modelVersion,
        host: m.host,
        pid: m.pid,
        doing: w.doing(m.peer, now),
        heartbeatAgeMs: Math.max(0, now - m.heartbeatAt),
      }));
    // Peers that took part but have no record now (stopped or lapsed).
    const known = new Set(members.map((m) => m.peer));
    const gone = [...new Set([...w.iterations.values()].flatMap((i) => i.peers))].filter((p) => !known.has(p)).sort();
    const iterations = [...w.iterations.values()].sort((a, b) => a.iteration - b.iteration).map((it) => ({ ...it, expected: expectedCounts(it) }));
    return {
      experiment: this.experiment,
      now,
      done: w.done,
      leader: w.leader && {
        instance: w.leader.instance,
        token: w.leader.token,
        since: w.leader.since,
        renewedAt: w.leader.renewedAt,
        released: w.leader.released,
      },
      members,
      gone,
      current: w.current()?.iteration,
      iterations,
      rates: w.rates(now),
      flows: [...this.allFlows().entries()].map(([k, count]) => {
        const [from, to, kind] = k.split("\t") as [string, string, string];
        return { from, to, kind, count };
      }),
      scores: [...this.suites.entries()].sort(([a], [b]) => a - b).map(([iteration, m]) => ({ iteration, peers: Object.fromEntries([...m.entries()].sort()) })),
      training: this.trainingCurves(),
      trained: [...this.trainDone.values()].map(({ curve: _, ...t }) => t),
      deadLetters: w.deadLetters.slice(-20).reverse(),
      cost: w.costs(),
      pairsKept: this.pairs.size,
      precision: this.livePrecision(),
    };
  }

  /**
   * One curve per member and iteration: a finished training's own curve (every step's figures,
   * thinned, also when the dashboard started late), else the steps seen in heartbeats so far.
   */
  private trainingCurves(): { peer: string; iteration: number; points: TrainingPoint[] }[] {
    const out = new Map<string, { peer: string; iteration: number; points: TrainingPoint[] }>();
    for (const [k, c] of this.curves) out.set(k, c);
    for (const [k, t] of this.trainDone) {
      if (!t.curve?.length) continue;
      out.set(k, { peer: t.peer, iteration: t.iteration, points: t.curve.map(([step, loss, margin]) => ({ step, total: t.steps, loss, margin })) });
    }
    return [...out.values()].sort((a, b) => a.iteration - b.iteration || a.peer.localeCompare(b.peer));
  }

  /** Pair precision of the pairs seen so far: per iteration, and over all of them (undefined: none graded). */
  private livePrecision() {
    const total = this.precision.total();
    return total && { total, iterations: this.precision.iterations().map((iteration) => ({ iteration, table: this.precision.table(iteration)! })) };
  }

  /** The pairs matching a query, newest iteration first, and how many match in all. */
  queryPairs(q: PairQuery): { total: number; rows: PairRow[] } {
    const rows: PairRow[] = [];
    for (const p of this.pairs.values()) {
      if (q.iteration !== undefined && p.iteration !== q.iteration) continue;
      if (q.member && p.chosen.author !== q.member && p.rejected.author !== q.member && p.forPeer !== q.member) continue;
      if (q.minMargin !== undefined && p.margin < q.minMargin) continue;
      if (q.maxMargin !== undefined && p.margin > q.maxMargin) continue;
      const row = this.row(p);
      if (q.suite && row.suite !== q.suite) continue;
      rows.push(row);
    }
    rows.sort((a, b) => b.iteration - a.iteration || a.promptId.localeCompare(b.promptId));
    const offset = Math.max(0, q.offset ?? 0);
    return { total: rows.length, rows: rows.slice(offset, offset + Math.min(500, Math.max(1, q.limit ?? 50))) };
  }

  pair(pairId: string): PairDetail | undefined {
    const p = this.pairs.get(pairId);
    if (!p) return undefined;
    const all = this.verdicts.get(p.promptId) ?? [];
    const on = (id: string) => all.filter((v) => v.candidateId === id).sort((a, b) => a.judge.localeCompare(b.judge));
    return { ...this.row(p), verdicts: { chosen: on(p.chosen.candidateId), rejected: on(p.rejected.candidateId) } };
  }

  /** A kept pair's image reference (`index` of its images). */
  image(pairId: string, index: number): ImageRef | undefined {
    return this.pairs.get(pairId)?.images[index];
  }

  /** Suites seen in evaluations and pairs, for the browser's filter. */
  suiteNames(): string[] {
    const names = new Set<string>();
    for (const m of this.suites.values()) for (const s of m.values()) for (const k of Object.keys(s)) if (k !== "average") names.add(k);
    return [...names].sort();
  }

  private row(p: PreferencePair): PairRow {
    const suite = this.suiteOf(p.question);
    const grade = gradePair(p, this.truthOf);
    return {
      pairId: p.pairId,
      iteration: p.iteration,
      promptId: p.promptId,
      question: p.question,
      ...(suite ? { suite } : {}),
      chosen: { author: p.chosen.author, text: p.chosen.text, score: p.chosen.score, ...(grade ? { right: grade.chosenRight } : {}) },
      rejected: { author: p.rejected.author, text: p.rejected.text, score: p.rejected.score, ...(grade ? { right: grade.rejectedRight } : {}) },
      margin: p.margin,
      judges: p.judges,
      ...(p.forPeer ? { forPeer: p.forPeer } : {}),
      images: p.images.length,
    };
  }
}

export type DashboardSnapshot = ReturnType<DashboardState["snapshot"]>;
