/** Pair precision as the report prints it (text) and shows it (report.html): one small table per iteration. */
import { ALL_FAMILIES, type PrecisionRow, type PrecisionTable } from "./tally.ts";

/** What the formatters read of a report's iteration. */
export interface IterationPrecision {
  iteration: number;
  precision?: PrecisionTable;
}

const share = (n: number, row: PrecisionRow) => `${((n / row.pairs) * 100).toFixed(1)}% (${n})`;
const graded = (its: readonly IterationPrecision[]) => its.filter((it): it is Required<IterationPrecision> => !!it.precision);

/** What the numbers mean, said once under both formats. */
export const PRECISION_NOTE =
  "pairs whose prompt's right answer is known (the tiny world's pool, or a benchmark item); chosen right: the chosen answer is right; rejected wrong: the rejected answer is wrong; both: the pair teaches the right thing. The panel never sees these.";

/** The "pair precision" section of the text report; "" when no pair was graded. */
export function formatPrecision(iterations: readonly IterationPrecision[]): string {
  const its = graded(iterations);
  if (!its.length) return "";
  const head = ["iter", "family".padEnd(10), "pairs".padStart(6), "chosen right".padStart(14), "rejected wrong".padStart(15), "both".padStart(14)].join(" ");
  const lines = ["pair precision", head, "-".repeat(head.length)];
  for (const it of its)
    for (const [family, row] of Object.entries(it.precision)) {
      if (row.pairs === 0) continue;
      lines.push(
        [
          String(it.iteration).padStart(4),
          (family === ALL_FAMILIES ? "all" : family).slice(0, 10).padEnd(10),
          String(row.pairs).padStart(6),
          share(row.chosenRight, row).padStart(14),
          share(row.rejectedWrong, row).padStart(15),
          share(row.both, row).padStart(14),
        ].join(" "),
      );
    }
  lines.push(`(${PRECISION_NOTE})`);
  return lines.join("\n");
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** report.html's "Pair precision" section: a small table per iteration; "" when no pair was graded. */
export function precisionHtml(iterations: readonly IterationPrecision[]): string {
  const its = graded(iterations);
  if (!its.length) return "";
  const table = (it: Required<IterationPrecision>) =>
    `<table class="precision" id="precision-${it.iteration}"><thead><tr><th>iteration ${it.iteration}</th><th>pairs</th><th>chosen right</th><th>rejected wrong</th><th>both</th></tr></thead><tbody>${Object.entries(
      it.precision,
    )
      .filter(([, row]) => row.pairs > 0)
      .map(
        ([family, row]) =>
          `<tr${family === ALL_FAMILIES ? ' class="panel"' : ""}><td>${family === ALL_FAMILIES ? "all families" : esc(family)}</td><td>${row.pairs}</td><td>${share(row.chosenRight, row)}</td><td>${share(row.rejectedWrong, row)}</td><td><b>${share(row.both, row)}</b></td></tr>`,
      )
      .join("")}</tbody></table>`;
  return `<h2>Pair precision</h2>
<p>How often the panel's pairs teach the right thing, per iteration and family: ${esc(PRECISION_NOTE)}</p>
<div class="plots">${its.map(table).join("\n")}</div>`;
}
