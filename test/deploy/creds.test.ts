/**
 * Per-identity credentials on a real nats-server 2.9: the config `pop creds` writes is accepted,
 * each key can do its job and nothing else, a refused key gets a clear error, and a whole run of
 * separate processes completes with the keys (so the permission lists are sufficient).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { createUser } from "@nats-io/nkeys";
import type { Logger } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { actorHelp } from "../../deploy/cli/commands/actor.ts";
import { coordinatorHelp } from "../../deploy/cli/commands/coordinator.ts";
import { poolHelp } from "../../deploy/cli/commands/pool.ts";
import { reportHelp } from "../../deploy/cli/commands/report.ts";
import { revoteHelp } from "../../deploy/cli/commands/revote.ts";
import { watchHelp } from "../../deploy/cli/commands/watch.ts";
import { AuthenticationRefusedError, connectNats } from "../../deploy/cli/connect.ts";
import { COORDINATOR_IDENTITY, CredsSetupError, OBSERVER_IDENTITY, seedFileOf, writeCreds, type CredsResult } from "../../deploy/ops/creds.ts";
import { ConnectionOptionsError, CredentialsFileError, NATS_OPTIONS_HELP, natsConnectionOptions, natsTarget } from "../../deploy/ops/nats-options.ts";
import { NatsServer } from "../../deploy/ops/nats-server.ts";
import {
  BUCKETS,
  PublishError,
  STREAMS,
  consumers,
  ensureConsumer,
  ensureTopology,
  openManager,
  publishMessage,
  readStored,
  subjects,
  type Message,
} from "../../protocol/mod.ts";
import { LeaderReader } from "../../protocol/reader/leader.ts";
import * as msg from "../support/messages.ts";
import { CredentialedServer } from "../support/networks.ts";
import { startPanel, TRAIN_ONE_EPOCH, VOTE_EVERY_PROMPT } from "../support/panel.ts";

const CLI = fileURLToPath(new URL("../../deploy/cli/cli.ts", import.meta.url));
const EXP = "sec";
const PEERS = ["alice", "bob", "carol"];

const candidatesBy = (author: string, iteration = 1): Message => msg.candidates({ experiment: EXP, iteration, author });
const verdictBy = (judge: string, author: string): Message => msg.verdict({ experiment: EXP, judge, scored: { [author]: [3] } });
const prompt: Message = msg.prompt({ experiment: EXP });
const pair: Message = msg.pair({ experiment: EXP });
const opened: Message = msg.control("iteration_opened", { iteration: 1, peers: PEERS, prompts: 1 }, EXP);

/** The publish is refused by the server's permissions: a non-retryable PublishError naming the subject. */
async function expectRefused(p: Promise<unknown>, subject: string) {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `publishing on ${subject} should be refused`).toBeInstanceOf(PublishError);
  expect((error as PublishError).retryable).toBe(false);
  expect((error as Error).message).toContain(`not allowed to publish`);
  expect((error as Error).message).toContain(subject);
}

describe("per-identity credentials (pop creds) on nats-server", () => {
  let network: CredentialedServer;
  let creds: CredsResult;
  let server: NatsServer;
  let dir: string;
  const as = (identity: string) => network.as(identity);

  beforeAll(async () => {
    network = await CredentialedServer.start({ experiment: EXP, peers: PEERS });
    ({ creds, server, dir } = network);
    // The coordinator's key sets the server up, as README.txt says.
    await ensureTopology(await as(COORDINATOR_IDENTITY));
  });
  afterAll(() => network.dispose());

  it("writes seeds readable only by their owner and a config nats-server accepts", () => {
    expect(creds.identities.map((i) => i.name)).toEqual([COORDINATOR_IDENTITY, ...PEERS, OBSERVER_IDENTITY]);
    for (const id of creds.identities) expect(readFileSync(id.seedFile, "utf8")).toMatch(/^SU[A-Z2-7]{56}\n$/);
    for (const id of creds.identities) expect(spawnSync("stat", ["-c", "%a", id.seedFile], { encoding: "utf8" }).stdout.trim()).toBe("600");
    // Started above with it; and a second run keeps every key.
    const again = writeCreds({ experiment: EXP, peers: PEERS, out: creds.dir, observer: true });
    expect(again.identities.map((i) => [i.publicKey, i.created])).toEqual(creds.identities.map((i) => [i.publicKey, false]));
    expect(readFileSync(creds.readme, "utf8")).toContain(`--nkey ${seedFileOf(creds.dir, "alice")}`);
  });

  it("(a) a peer publishes its own candidates and verdicts and uses its durable consumers", async () => {
    const coordinator = jetstream(await as(COORDINATOR_IDENTITY));
    const nc = await as("alice");
    const js = jetstream(nc);
    expect((await publishMessage(js, candidatesBy("alice"))).subject).toBe(subjects.candidates(EXP, 1, "alice"));
    expect((await publishMessage(js, verdictBy("alice", "bob"))).subject).toBe(subjects.verdict(EXP, 1, "alice"));
    await publishMessage(coordinator, prompt);
    const jsm = await openManager(nc);
    for (const spec of [consumers.peerPrompts(EXP, "alice"), consumers.peerCandidates(EXP, "alice"), consumers.peerControl(EXP, "alice")]) {
      expect(await ensureConsumer(jsm, spec)).toBe("created");
      expect(await ensureConsumer(jsm, spec)).toBe("unchanged");
    }
    const c = await js.consumers.get(STREAMS.prompts.name, consumers.peerPrompts(EXP, "alice").config.durable_name);
    const m = await c.next({ expires: 2000 });
    expect(m?.subject).toBe(subjects.prompt(EXP, 1));
    expect(await m!.ackAck()).toBe(true);
    // ... but not another peer's durable consumer.
    await expect(ensureConsumer(jsm, consumers.peerPrompts(EXP, "bob"))).rejects.toThrow(/permission/i);
  });

  it("(b) a peer cannot speak as another peer, nor publish prompts, pairs or the coordinator's events", async () => {
    const js = jetstream(await as("alice"));
    await expectRefused(publishMessage(js, candidatesBy("other")), "pop.sec.cand.1.other");
    await expectRefused(publishMessage(js, candidatesBy("bob")), "pop.sec.cand.1.bob");
    await expectRefused(publishMessage(js, verdictBy("bob", "alice")), "pop.sec.verdict.1.bob");
    await expectRefused(publishMessage(js, pair), "pop.sec.pair.1");
    await expectRefused(publishMessage(js, prompt), "pop.sec.prompt.1");
    await expectRefused(publishMessage(js, opened), "pop.sec.ctl.iteration_opened");
    await expectRefused(publishMessage(js, { ...candidatesBy("alice"), experiment: "other" }), "pop.other.cand.1.alice");
  });

  it("a refused subscription is logged with its subject", async () => {
    const warned: { obj: Record<string, unknown>; msg: string }[] = [];
    const log = { warn: (obj: Record<string, unknown>, msg: string) => warned.push({ obj, msg }), info() {} } as unknown as Logger;
    const nc = await network.as("alice", log);
    const sub = nc.subscribe("pop.sec.>");
    await expect(
      (async () => {
        for await (const _ of sub) break;
      })(),
    ).rejects.toThrow(/Permissions Violation for Subscription to "pop\.sec\.>"/);
    expect(warned).toContainEqual(
      expect.objectContaining({
        msg: "NATS permissions refuse this identity a subscription to pop.sec.>",
        obj: expect.objectContaining({ subject: "pop.sec.>" }),
      }),
    );
  });

  it("(c) the observer reads the streams but publishes nothing and writes no KV", async () => {
    const nc = await as(OBSERVER_IDENTITY);
    const js = jetstream(nc);
    await expectRefused(publishMessage(js, candidatesBy("alice", 2)), "pop.sec.cand.2.alice");
    await expectRefused(publishMessage(js, prompt), "pop.sec.prompt.1");
    await expectRefused(publishMessage(js, opened), "pop.sec.ctl.iteration_opened");
    const kvm = new Kvm(nc);
    for (const bucket of [BUCKETS.state, BUCKETS.members]) {
      const kv = await kvm.open(bucket);
      await expect(kv.put(`${EXP}.config`, new Uint8Array([1]))).rejects.toThrow(/permission/i);
    }
    const read = await readStored(nc, STREAMS.candidates.name, subjects.all(EXP, "cand"), "candidates");
    expect(read.messages.map((m) => m.author)).toEqual(["alice"]);
    expect((await readStored(nc, STREAMS.verdicts.name, subjects.all(EXP, "verdict"), "verdict")).messages).toHaveLength(1);
    expect(await (await kvm.open(BUCKETS.state)).get(`${EXP}.config`)).toBeNull();
    // A quiet follower (pop watch) asks the stream leader what its replica may lack.
    const fromLeader = await new LeaderReader(nc, STREAMS.candidates.name, subjects.all(EXP, "cand")).nextAfter(0);
    expect(fromLeader?.subject).toMatch(/^pop\.sec\.cand\.\d+\.alice$/);
  });

  it("(d) a key the server does not know is refused with a clear error, not a stack trace", async () => {
    const stranger = join(dir, "stranger.nk");
    writeFileSync(stranger, new TextDecoder().decode(createUser().getSeed()), { mode: 0o600 });
    const error = await connectNats({ servers: server.url, auth: { nkey: stranger } }, "stranger").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AuthenticationRefusedError);
    expect((error as Error).message).toContain(`NATS at ${server.url} refused the credentials (nkey U`);
    expect((error as AuthenticationRefusedError).retryable).toBe(false);
    await expect(connectNats(server.url, "anonymous")).rejects.toThrow(/refused the credentials \(no credentials\)/);
    const run = spawnSync(process.execPath, ["--import", "tsx", CLI, "report", "--server", server.url, "--nkey", stranger, "--out", join(dir, "r")], {
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(
      /^pop report: AuthenticationRefusedError: NATS at nats:\/\/127\.0\.0\.1:\d+ refused the credentials \(nkey U[A-Z2-7]+ from .*stranger\.nk\)/,
    );
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });
});

// Its own server: the probes above leave messages a real run would have to read around.
describe("a run with per-identity credentials", () => {
  it("(e) a coordinator and three actors, each with its own key, complete a run", async () => {
    await using network = await CredentialedServer.start({ experiment: EXP, peers: PEERS });
    // On a fresh server a peer's key cannot set up the streams, and says who can.
    await expect(ensureTopology(await network.as("alice"))).rejects.toThrow(/may not create it: start the coordinator/);
    await using panel = await startPanel(
      { experiment: EXP, iterations: 1, promptsPerIteration: 6, k: 2, temperature: 1, poolSeed: 21, minPeers: 3 },
      // What is checked is who may do what, not what the members learn: one epoch is enough.
      { voting: VOTE_EVERY_PROMPT, training: TRAIN_ONE_EPOCH },
      { network, benchItems: 10 },
    );
    const { creds, server } = network;
    const { dir } = panel;
    const ckpt = await panel.randomCheckpoints(PEERS);
    const common = ["--server", server.url, "--experiment", EXP];
    const procs = [panel.startCoordinator(), ...PEERS.map((p) => panel.startActor(p, ckpt[p]!))];
    const observer = await network.as(OBSERVER_IDENTITY);
    // Generous: four processes start tsx and TensorFlow.js, which takes seconds each on a busy machine.
    const deadline = Date.now() + 90_000;
    let done = false;
    while (!done && Date.now() < deadline) {
      // The coordinator exits 0 once the experiment is done; anything else is a failure.
      const dead = procs.find((p) => !p.running && p.child.exitCode !== 0);
      if (dead) throw new Error(`${dead.name} exited:\n${dead.logTail()}`);
      const ctl = await readStored(observer, STREAMS.control.name, subjects.all(EXP, "ctl"), "control");
      done = ctl.messages.some((e) => e.event === "experiment_done");
      if (!done) await new Promise((r) => setTimeout(r, 500));
    }
    const logs = procs.map((p) => `${p.name}:\n${p.logTail(40)}`).join("\n");
    expect(done, `the run did not finish:\n${logs}`).toBe(true);
    const pairs = await readStored(observer, STREAMS.pairs.name, subjects.all(EXP, "pair"), "pair");
    expect(pairs.messages.length).toBeGreaterThan(0);
    const ctl = (await readStored(observer, STREAMS.control.name, subjects.all(EXP, "ctl"), "control")).messages;
    expect(new Set(ctl.filter((e) => e.event === "training_done").map((e) => (e as { peer: string }).peer))).toEqual(new Set(PEERS));
    // Sufficient, not just lucky: no process was refused anything on the way.
    for (const p of procs) expect(readFileSync(p.logFile, "utf8"), `${p.name} was refused something`).not.toMatch(/permissions refuse|Permissions Violation/i);
    // The observer's key is enough for the read-only tools (KV, streams, images for the HTML).
    for (const args of [
      ["report", "--out", join(dir, "report")],
      ["revote", "--min-chosen", "0.5"],
    ]) {
      const run = spawnSync(process.execPath, ["--import", "tsx", CLI, ...args, ...common, "--nkey", seedFileOf(creds.dir, OBSERVER_IDENTITY)], {
        encoding: "utf8",
        timeout: 30_000,
      });
      expect(run.status, `pop ${args[0]} as the observer:\n${run.stdout}\n${run.stderr}`).toBe(0);
      expect(run.stderr).not.toMatch(/permissions refuse/i);
    }
  }, 120_000);
});

describe("connection options", () => {
  it("every connecting command lists the shared connection options once", () => {
    for (const help of [actorHelp, coordinatorHelp, poolHelp, reportHelp, revoteHelp, watchHelp]) {
      expect(help).toContain(NATS_OPTIONS_HELP);
      for (const flag of ["--server URL", "--nkey FILE", "--creds FILE", "--user U", "--password P", "--tls-ca FILE", "--tls-cert FILE", "--tls-key FILE"]) {
        // Option lines only: a usage line may name --server too.
        expect(help.split(`\n  ${flag}`).length - 1, `${flag} in:\n${help}`).toBe(1);
      }
    }
  });

  it("reads flags, URL credentials and the environment, flags first, and refuses contradictions", () => {
    expect(natsTarget("nats://u:p%40ss@h1:4222,nats://u:p%40ss@h2:4222", {}, {})).toEqual({
      servers: "nats://h1:4222,nats://h2:4222",
      auth: { user: "u", password: "p@ss" },
    });
    expect(natsTarget("nats://h:4222", {}, { NATS_NKEY: "/k.nk", NATS_TLS_CA: "/ca.pem" })).toEqual({
      servers: "nats://h:4222",
      auth: { nkey: "/k.nk", tlsCa: "/ca.pem" },
    });
    // A flag's credentials replace the environment's (no clash with a shell's NATS_USER).
    expect(natsTarget("nats://h:4222", { nkey: "/a.nk" }, { NATS_USER: "x", NATS_PASSWORD: "y" }).auth).toEqual({ nkey: "/a.nk" });
    expect(() => natsTarget("nats://h", { nkey: "/a.nk", creds: "/a.creds" }, {})).toThrow(ConnectionOptionsError);
    expect(() => natsTarget("nats://h", { password: "p" }, {})).toThrow(/--password needs --user/);
    expect(() => natsTarget("nats://h", { tlsCert: "/c.pem" }, {})).toThrow(/--tls-cert and --tls-key go together/);
    expect(() => natsTarget("nats://a:b@h1,nats://c:d@h2", {}, {})).toThrow(/different credentials/);
  });

  it("refuses unreadable or malformed key files before connecting", () => {
    const dir = mkdtempSync(join(tmpdir(), "pop-keys-"));
    try {
      writeFileSync(join(dir, "bad.nk"), "not a seed");
      writeFileSync(join(dir, "bad.creds"), "nothing");
      expect(() => natsConnectionOptions({ servers: "nats://h", auth: { nkey: join(dir, "missing.nk") } }, "t")).toThrow(CredentialsFileError);
      expect(() => natsConnectionOptions({ servers: "nats://h", auth: { nkey: join(dir, "bad.nk") } }, "t")).toThrow(/holds no nkey user seed/);
      expect(() => natsConnectionOptions({ servers: "nats://h", auth: { creds: join(dir, "bad.creds") } }, "t")).toThrow(/not a NATS \.creds file/);
      expect(() => writeCreds({ experiment: EXP, peers: ["coordinator"], out: dir })).toThrow(CredsSetupError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("user and password in the URL log in; a wrong password gets the clear error naming the user", async () => {
    const server = await NatsServer.start({ extraConfig: "authorization { user: pop, password: s3cret }" });
    try {
      const url = (auth: string) => server.url.replace("nats://", `nats://${auth}@`);
      const nc = await connectNats(natsTarget(url("pop:s3cret"), {}, {}), "userpass");
      await nc.close();
      await expect(connectNats(natsTarget(url("pop:wrong"), {}, {}), "userpass")).rejects.toThrow(`NATS at ${server.url} refused the credentials (user 'pop')`);
    } finally {
      await server.dispose();
    }
  });

  it("TLS files: a server that verifies clients accepts --tls-ca/--tls-cert/--tls-key", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pop-tls-"));
    const ssl = (...args: string[]) => {
      const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
      if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
    };
    try {
      ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=pop-test-ca");
      for (const who of ["server", "client"]) {
        ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${who}.key`, "-out", `${who}.csr`, "-subj", `/CN=${who}`);
        writeFileSync(join(dir, `${who}.ext`), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
        ssl(
          "x509",
          "-req",
          "-in",
          `${who}.csr`,
          "-CA",
          "ca.pem",
          "-CAkey",
          "ca.key",
          "-CAcreateserial",
          "-out",
          `${who}.pem`,
          "-days",
          "1",
          "-extfile",
          `${who}.ext`,
        );
      }
      const f = (n: string) => join(dir, n);
      const server = await NatsServer.start({
        extraConfig: `tls { cert_file: "${f("server.pem")}", key_file: "${f("server.key")}", ca_file: "${f("ca.pem")}", verify: true }`,
      });
      try {
        const nc = await connectNats(natsTarget(server.url, { tlsCa: f("ca.pem"), tlsCert: f("client.pem"), tlsKey: f("client.key") }, {}), "tls");
        expect(nc.info?.tls_required).toBe(true);
        await nc.close();
      } finally {
        await server.dispose();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
