/**
 * `pop dashboard`: a read-only web page of a running (or finished) experiment: the live view of
 * `pop watch`, who sends what to whom, scores and training curves, and a pair browser.
 */
import { getImage, openBlobs } from "../../../protocol/mod.ts";
import { familyOfQuestion } from "../../../actors/models/tiny/world.ts";
import type { Flags } from "../args.ts";
import { connectNats, onShutdown } from "../connect.ts";
import { NATS_OPTIONS_HELP } from "../../ops/nats-options.ts";
import { DashboardServer } from "../../observe/dashboard/server.ts";
import { DashboardState, MAX_PAIRS } from "../../observe/dashboard/state.ts";
import { followExperiment } from "../../observe/watch/follow.ts";
import { truthFor } from "../../observe/precision/source.ts";

export const dashboardHelp = `pop dashboard [options]

Serves a read-only web page of an experiment, live (it updates every second over server-sent
events): each member's state, model version and heartbeat; the open iteration's progress with
totals, rates and ETA; messages per second; a matrix of who sends what to whom; the scores per
iteration; training curves (loss or margin per step, as members report them: smoothed, with
values on hover and zoom, one panel per member or iteration); dead letters;
and a pair browser: every preference pair with its image, question, chosen and rejected
answers, every judge's five scores on both and the vote, filterable by iteration, member,
suite and margin, each answer marked right or wrong where the truth of its prompt is known
(the tiny world's pool, or --bench), with the live pair precision. It reads the streams from the start, so it can start late (training curves
begin when it starts), and needs only observer credentials. It keeps the latest ${MAX_PAIRS}
pairs for browsing.

  --experiment NAME    experiment                                           default: demo
  --port N             port to listen on (0: any free port)                 default: 8484
  --host ADDR          address to listen on; 0.0.0.0 opens it to the network default: 127.0.0.1
  --bench FILE         a benchmark JSONL (pop actor --bench): pairs whose prompt is one of its items
                       are graded against its answers too (the tiny world's pool always is)

${NATS_OPTIONS_HELP}`;

export async function runDashboard(flags: Flags): Promise<void> {
  const experiment = flags.string("experiment") ?? "demo";
  const port = flags.int("port", { min: 0, max: 65535 }) ?? 8484;
  const host = flags.string("host") ?? "127.0.0.1";
  const bench = flags.string("bench");
  const nats = flags.nats();
  flags.rejectUnknown();
  const truth = await truthFor(bench);
  const nc = await connectNats(nats, "pop-dashboard");
  // Questions of the tiny world name their suite; other prompts are listed under none.
  const state = new DashboardState(experiment, familyOfQuestion, truth.truthOf);
  const following = await followExperiment(nc, experiment, {
    message: (m, at) => state.add(m, at),
    member: (key, record) => state.member(key, record),
  });
  const blobs = await openBlobs(nc);
  const server = new DashboardServer({ state, fetchImage: (ref) => getImage(blobs, ref) });
  let url: string;
  try {
    ({ url } = await server.listen(port, host));
  } catch (e) {
    await following.stop();
    await nc.close();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") throw new Error(`port ${port} on ${host} is in use; pass --port with another (0 picks a free one)`, { cause: e });
    throw e;
  }
  process.stdout.write(`dashboard of experiment '${experiment}' on ${nats.servers}: ${url}  (Ctrl-C to stop)\n`);
  onShutdown(async () => {
    await server.close();
    await following.stop();
    await nc.close();
  });
}
