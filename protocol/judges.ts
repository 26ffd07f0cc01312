/**
 * Which members judge an author's candidates of a prompt. With `judging.judgesPerAuthor` = m
 * (fewer than every other member), each author's batch of a prompt is judged by m of the
 * iteration's other members, chosen by a pure function of (experiment, iteration, prompt,
 * author, panel, m): the judges and the coordinator compute the same assignment with no message
 * between them, and a restart or a replay gives the same one.
 *
 * The choice is a seeded rotation: the panel sorted, a prompt's seed r (a hash of experiment,
 * iteration and prompt, modulo N − 1), and the author at index i is judged by the members at
 * offsets 1 + ((r + j) mod (N − 1)), j < m, after it around the circle. For one prompt every
 * member then judges exactly m authors (the offsets from a judge to its authors are the same m
 * consecutive ones), so judging is balanced prompt by prompt, and over the prompts each judge
 * meets each author about equally often.
 */
import type { ExperimentConfig, IterationRecord } from "./schemas.ts";

/** The panel of an iteration and its `judgesPerAuthor`: who judges whose candidates, per prompt. */
export class JudgeAssignment {
  /** The panel, sorted. */
  readonly panel: readonly string[];
  /** Judges per author: m, at most every other member. */
  readonly perAuthor: number;
  private readonly index: ReadonlyMap<string, number>;
  /** The last prompt's seed (a judge and the vote book ask about one prompt many times in a row). */
  private last?: { promptId: string; seed: number };

  constructor(
    readonly experiment: string,
    readonly iteration: number,
    panel: Iterable<string>,
    /** Judges per author; "all" or undefined: every member other than the author. */
    judgesPerAuthor?: number | "all",
  ) {
    this.panel = [...new Set(panel)].sort();
    this.index = new Map(this.panel.map((p, i) => [p, i]));
    const others = Math.max(0, this.panel.length - 1);
    this.perAuthor = typeof judgesPerAuthor === "number" ? Math.min(Math.max(0, Math.floor(judgesPerAuthor)), others) : others;
  }

  /** The assignment of an iteration under the experiment's `judging` settings. */
  static of(config: Pick<ExperimentConfig, "experiment" | "judging">, record: Pick<IterationRecord, "iteration" | "peers">): JudgeAssignment {
    return new JudgeAssignment(config.experiment, record.iteration, record.peers, config.judging.judgesPerAuthor);
  }

  /** Whether every member judges every other member (nothing is left out). */
  get all(): boolean {
    return this.perAuthor >= this.panel.length - 1;
  }

  /**
   * Whether `judge` is assigned `author`'s candidates of the prompt. Never the author itself
   * (self-judging, where on, is on top of the assignment) and never anyone off the panel.
   */
  assigned(promptId: string, judge: string, author: string): boolean {
    const j = this.index.get(judge);
    const a = this.index.get(author);
    if (j === undefined || a === undefined || j === a) return false;
    if (this.all) return true;
    const n = this.panel.length;
    const offset = (j - a + n) % n; // 1 .. n−1
    return (offset - 1 - this.seed(promptId) + (n - 1)) % (n - 1) < this.perAuthor;
  }

  /** The members assigned `author`'s candidates of the prompt, in rotation order (none for an author off the panel). */
  judgesOf(promptId: string, author: string): string[] {
    const a = this.index.get(author);
    if (a === undefined) return [];
    const n = this.panel.length;
    const r = this.all ? 0 : this.seed(promptId);
    return Array.from({ length: this.perAuthor }, (_, k) => this.panel[(a + 1 + ((r + k) % (n - 1))) % n]!);
  }

  /** The authors whose candidates of the prompt `judge` is assigned, sorted. */
  authorsOf(promptId: string, judge: string): string[] {
    return this.panel.filter((a) => this.assigned(promptId, judge, a));
  }

  private seed(promptId: string): number {
    if (this.last?.promptId !== promptId)
      this.last = { promptId, seed: hash32(`${this.experiment}\u0000${this.iteration}\u0000${promptId}`) % (this.panel.length - 1) };
    return this.last.seed;
  }
}

/** The members assigned `author`'s candidates of a prompt: the pure function, spelt out. */
export function assignedJudges(
  experiment: string,
  iteration: number,
  promptId: string,
  author: string,
  panel: Iterable<string>,
  judgesPerAuthor?: number | "all",
): string[] {
  return new JudgeAssignment(experiment, iteration, panel, judgesPerAuthor).judgesOf(promptId, author);
}

/** FNV-1a over the UTF-16 code units, then a murmur3 finaliser so that small moduli see every bit. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
