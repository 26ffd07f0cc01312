/** `pop plan`'s table: the projection as people read it. */
import { formatDuration } from "../../cli/progress.ts";
import type { Projection } from "./project.ts";

/** What the calibration was run with, for the table's header. */
export interface PlanContext {
  samples: number;
  promptSource: string;
  concurrency: number;
  maxTokens: number;
}

const secs = (s: number) => (s < 1 ? `${(s * 1000).toFixed(0)} ms` : s < 60 ? `${s.toFixed(1)} s` : formatDuration(s * 1000));
const count = (n: number) => Math.round(n).toLocaleString("en-US");

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")).join("\n");
}

export function renderPlan(p: Projection, ctx: PlanContext): string {
  const { params: q } = p;
  const m = q.judgesPerAuthor === "all" ? `all (${p.judgesPerAuthor})` : `${p.judgesPerAuthor}`;
  const lines = [
    `run: ${p.panel} members, ${q.iterations} iterations x ${count(q.promptsPerIteration)} prompts, k = ${q.k}, maxTokens ${ctx.maxTokens}`,
    `judging: ${q.mode} mode, judges per author ${m}${q.selfJudging ? " + self-judging" : ""}`,
    `calibration: ${ctx.samples} sample prompts (${ctx.promptSource}) per member, up to ${ctx.concurrency} requests in flight (the openai backend's --concurrency, as the actor runs)`,
    "",
    "measured per member, all at once (steady wall time per unit, answering and judging side by side; latency = one request's mean):",
    table([
      ["member", "server", "s/prompt", "req/prompt", "latency", "s/candidate", "req/candidate", "latency"],
      ...p.members.map((x) => [
        x.name,
        x.baseUrl,
        secs(x.measured.secondsPerPrompt),
        x.measured.requestsPerPrompt.toFixed(2),
        secs(x.measured.answerLatency),
        secs(x.measured.secondsPerCandidate),
        x.measured.requestsPerCandidate.toFixed(2),
        secs(x.measured.judgeLatency),
      ]),
    ]),
    "",
    "projected per iteration (judge requests: the formula's bound / expected once repeated answers are judged once):",
    table([
      ["member", "model", "answer req", "answer time", "judge req", "expected", "judge time", "fill+drain", "total"],
      ...p.members.map((x) => [
        x.name,
        x.model,
        count(x.perIteration.answer.requests),
        secs(x.perIteration.answer.seconds),
        count(x.perIteration.judge.requests),
        count(x.perIteration.judge.expectedRequests),
        secs(x.perIteration.judge.seconds),
        secs(x.perIteration.overheadSeconds),
        secs(x.perIteration.seconds),
      ]),
    ]),
    "",
  ];
  const hosts = new Set(p.members.map((x) => x.baseUrl));
  if (hosts.size < p.members.length) lines.push(`members sharing a server were calibrated together: each one's times include the others' load`);
  const h = p.sharedHost;
  if (h)
    lines.push(
      `servers on this machine: the calibration used ${h.passCpuSeconds.toFixed(1)} CPU-s in ${h.wallSeconds.toFixed(1)} s with ${h.idleCores.toFixed(1)} cores idle (${(h.share * 100).toFixed(0)}% of the busy CPU); the panel's own processes add ~${h.panelCpuSeconds.toFixed(1)} CPU-s beside them: model times x ${h.factor.toFixed(2)}`,
    );
  const train = q.trainMinutes === undefined ? "training not included (--train-minutes)" : `training ${secs(p.perIteration.trainSeconds)}`;
  lines.push(
    `per iteration: ${count(p.perIteration.answerRequests)} answer + ${count(p.perIteration.judgeRequests)} judge requests (${count(p.perIteration.expectedJudgeRequests)} expected); slowest member (${p.slowest}) ${secs(p.perIteration.modelSeconds)} + fill and drain ${secs(p.perIteration.overheadSeconds)}, ${train}: ${secs(p.perIteration.seconds)}`,
    `whole run (${q.iterations} x ${count(q.promptsPerIteration)} prompts): ${count(p.run.answerRequests)} answer + ${count(p.run.judgeRequests)} judge requests (${count(p.run.expectedJudgeRequests)} expected): ${secs(p.run.seconds)}`,
  );
  return lines.join("\n");
}
