/**
 * The panel's own `pop` processes on a 3-node JetStream cluster started with the project's
 * launcher: every stream and bucket stays R3 although each process ensures the topology, and a
 * node killed mid-run does not stop it: the run finishes with every prompt's pair exactly once.
 *
 * On nats-server 2.9 a dead node stays a placement target for new ephemeral consumers for about
 * a minute, so half of the reads and followers created then never answer: the run depends on
 * protocol/reader/ (read-back and follow) trying again (it stalled before they did).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createExperiment, experimentConfig, loadTinyPool } from "../../deploy/ops/experiment.ts";
import { PopProcess } from "../../deploy/cli/processes.ts";
import { openManager, ensureTopology, readStored, STREAMS, subjects } from "../../protocol/mod.ts";
import { cleanup, connectTo, eventually, startCluster } from "../support/nats.ts";
import { randomCheckpoints, VOTE_EVERY_PROMPT } from "./panel.ts";

const MEMBERS = ["ann", "ben", "cat"];
const PROMPTS = 16;

describe("a panel on a 3-node cluster", () => {
  const dir = mkdtempSync(join(tmpdir(), "pop-cluster-panel-"));
  const processes: PopProcess[] = [];
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop(5000)));
    await cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps R3 and finishes with every pair once when a node dies", async () => {
    const cluster = await startCluster(3);
    const nc = await connectTo(cluster.urls, "cluster-panel");
    await eventually(async () => (await (await openManager(nc)).getAccountInfo(), true), 30_000, "JetStream meta leader");
    await eventually(() => ensureTopology(nc, { replicas: 3 }), 30_000, "the R3 topology");
    const settings = { experiment: "clu", iterations: 2, promptsPerIteration: PROMPTS, k: 2, temperature: 1, poolSeed: 23, minPeers: 3 };
    await loadTinyPool(nc, settings.poolSeed, settings.iterations * PROMPTS, settings.experiment);
    await createExperiment(nc, experimentConfig(settings, { voting: VOTE_EVERY_PROMPT }));
    const ckpt = await randomCheckpoints(join(dir, "ckpt"), MEMBERS);
    const common = ["--server", cluster.urls.join(","), "--experiment", "clu"];
    const start = (name: string, args: string[]) => processes.push(new PopProcess(name, [...args, ...common], join(dir, `${name}.log`)));
    for (const m of MEMBERS) start(m, ["actor", "--peer", m, "--checkpoint", ckpt[m]!, "--bench-items", "10"]);
    start("coordinator", ["coordinator"]);

    const control = async () => (await readStored(nc, STREAMS.control.name, subjects.all("clu", "ctl"), "control").catch(() => ({ messages: [] }))).messages;
    await eventually(async () => (await control()).some((e) => e.event === "iteration_opened"), 120_000, "iteration 1 to open");
    await cluster.nodes[1]!.kill();
    await eventually(async () => (await control()).some((e) => e.event === "experiment_done"), 240_000, "the run to finish without the node").catch((error) => {
      throw new Error(`${(error as Error).message}\n${processes.map((p) => `--- ${p.name}\n${p.logTail(70)}`).join("\n")}`);
    });
    // Nobody died on the way: the actors still serve, the coordinator ended because the run did.
    for (const p of processes) expect(p.running || (await p.exited) === 0, `${p.name}:\n${p.logTail()}`).toBe(true);

    const jsm = await openManager(nc);
    for (const s of [...Object.values(STREAMS).map((x) => x.name), "KV_pop_state", "KV_pop_members", "OBJ_pop_blobs"]) {
      expect((await jsm.streams.info(s)).config.num_replicas, s).toBe(3);
    }
    const pairs = await eventually(async () => (await readStored(nc, STREAMS.pairs.name, subjects.all("clu", "pair"), "pair")).messages, 30_000, "the pairs");
    for (const it of [1, 2]) {
      const ids = pairs.filter((p) => p.iteration === it).map((p) => p.promptId);
      expect(ids).toHaveLength(PROMPTS);
      expect(new Set(ids).size).toBe(PROMPTS);
    }
  }, 360_000);
});
