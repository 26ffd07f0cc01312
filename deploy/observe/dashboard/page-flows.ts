/**
 * The page's flow view: a sender × receiver matrix (rows send, columns receive), each cell the
 * messages of every kind between the two, shaded by volume. Unlike a graph it stays readable
 * from 3 members to 16 and more; past a few members the kinds shrink to their initials.
 */

/** Styles of the matrix. */
export const FLOWS_STYLE = `
.matrix{border-collapse:collapse;font-size:12px}.matrix th,.matrix td{border:1px solid #e0e0e0;padding:2px 5px;text-align:right;white-space:nowrap}
.matrix thead th{vertical-align:bottom}.matrix th.corner{color:#777;font-weight:400;text-align:left}.matrix tbody th{text-align:left}
.matrix td.self{background:#f5f5f5;color:#bbb;text-align:center}.matrix td div{line-height:1.3}
.matrix.compact .kind{font-size:0}.matrix.compact .kind::before{content:attr(data-short);font-size:11px;color:#555}`;

/** The page's script for the matrix (uses the page's $, el, esc and colour). */
export const FLOWS_SCRIPT = String.raw`
const FLOW_KINDS = [["prompts", "p"], ["candidates", "c"], ["verdicts", "v"], ["pairs", "pr"], ["evaluations", "e"], ["training_done", "t"]];
function renderFlows(s) {
  if (!s.flows.length) return $("flows").replaceChildren(el("p", { class: "muted" }, "no messages yet"));
  const members = [...new Set([...s.iterations.flatMap((i) => i.peers), ...s.members.map((m) => m.peer), ...s.flows.flatMap((f) => [f.from, f.to])])].filter((n) => n !== "coordinator").sort();
  const nodes = ["coordinator", ...members];
  const cells = new Map();
  let max = 0;
  for (const f of s.flows) {
    const k = f.from + ">" + f.to, c = cells.get(k) || { total: 0, kinds: {} };
    c.kinds[f.kind] = (c.kinds[f.kind] || 0) + f.count;
    c.total += f.count;
    cells.set(k, c);
    max = Math.max(max, c.total);
  }
  const order = FLOW_KINDS.map(([k]) => k);
  const kindsOf = (c) => Object.keys(c.kinds).sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99));
  const name = (n) => '<span style="color:' + (n === "coordinator" ? "#455a64" : colour(n)) + '">' + esc(n) + "</span>";
  let h = "<thead><tr><th class=corner>from ↓ to →</th>" + nodes.map((n) => "<th>" + name(n) + "</th>").join("") + "</tr></thead><tbody>";
  for (const from of nodes) {
    h += "<tr><th>" + name(from) + "</th>";
    for (const to of nodes) {
      if (from === to) { h += '<td class="self">·</td>'; continue; }
      const c = cells.get(from + ">" + to);
      if (!c) { h += '<td data-edge="' + esc(from + ">" + to) + '"></td>'; continue; }
      // Shaded by the square root of the volume, so small flows still show beside big ones.
      const alpha = (0.08 + 0.5 * Math.sqrt(c.total / max)).toFixed(2);
      const kinds = kindsOf(c);
      const title = from + " → " + to + ": " + kinds.map((k) => k + " " + c.kinds[k]).join(", ");
      const short = (k) => (FLOW_KINDS.find(([x]) => x === k) || [k, k])[1];
      h += '<td data-edge="' + esc(from + ">" + to) + '" title="' + esc(title) + '" style="background:rgba(66,165,245,' + alpha + ')">' +
        kinds.map((k) => '<div><span class="kind" data-short="' + esc(short(k)) + '">' + esc(k) + "</span> " + c.kinds[k] + "</div>").join("") + "</td>";
    }
    h += "</tr>";
  }
  const compact = members.length > 6;
  const legend = compact ? "Kinds: " + FLOW_KINDS.map(([k, s]) => s + " = " + k).join(", ") + ". " : "";
  $("flows").innerHTML = '<div class="scroll"><table class="matrix' + (compact ? " compact" : "") + '" aria-label="messages per sender and receiver">' + h + "</tbody></table></div>" +
    '<p class="muted">' + legend + "Messages since the start of the experiment, rows sending to columns: prompts from the coordinator, candidates to every other member to be judged, verdicts back to the author, pairs to whoever trains on them; darker cells carry more.</p>";
}
`;
