/**
 * `pop serve` against hostile clients, over real HTTP to a real `pop serve` process: adapters
 * load only from regular files under --adapter-dir, within a byte cap and an adapter-count cap,
 * and refusals never tell what exists outside the root; requests in flight and the bytes of
 * their bodies are bounded (memory measured as the process's peak RSS); SIGTERM stops it in
 * seconds whatever it is doing.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { readFileSync, writeFileSync } from "node:fs";
import { request, type ClientRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MODEL = "ocrdumb";
// The served peer's own checkpoint: pop serve refuses an adapter of another base (422).
const CHECKPOINT = fileURLToPath(new URL("../../actors/models/tiny/checkpoints/ocrdumb.bin", import.meta.url));
const MIB = 1024 * 1024;

interface Served {
  child: ChildProcess;
  url: string;
  exited: Promise<number | null>;
  stderr: () => string;
}
const started: ChildProcess[] = [];

/** One `pop serve` in a single node process (so its pid is the server's), once it says where it listens. */
async function startServe(args: string[]): Promise<Served> {
  const child = spawn(process.execPath, ["--import", "tsx", "deploy/cli/cli.ts", "serve", "--peer", MODEL, "--port", "0", ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  started.push(child);
  let stderr = "";
  child.stderr!.on("data", (c) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no 'serving' line in 60 s; stderr:\n${stderr}`)), 60_000);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const m = /^serving \S+ at (http:\/\/\S+)\/v1$/.exec(line);
      if (!m) return;
      clearTimeout(timer);
      resolve(m[1]!);
    });
    void exited.then((code) => reject(new Error(`pop serve exited with ${code}; stderr:\n${stderr}`)));
  });
  return { child, url, exited, stderr: () => stderr };
}

/** A field of the server process's /proc status in MiB (VmRSS now, VmHWM its peak). */
function memoryMib(pid: number, field: "VmRSS" | "VmHWM"): number {
  const kb = Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
  return kb / 1024;
}

type Answer = { status: number; body: any; headers: Headers };
const post = async (base: string, path: string, body: unknown): Promise<Answer> => {
  const res = await fetch(`${base}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // plain-text success
  }
  return { status: res.status, body: parsed, headers: res.headers };
};

/** A raw POST whose body the test writes itself; resolves with the status, or 0 when the server cut the connection. */
function rawPost(base: string, path: string, headers: Record<string, string | number>, write: (req: ClientRequest) => void): Promise<number> {
  return new Promise((resolve) => {
    const u = new URL(base);
    const req = request({ host: u.hostname, port: u.port, path, method: "POST", headers: { "content-type": "application/json", ...headers } }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on("error", () => resolve(0));
    write(req);
  });
}

afterAll(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

describe("pop serve inside its boundary", () => {
  let tmp: string;
  let root: string;
  let outside: string;
  let served: Served;
  const load = (name: string, path: string) => post(served.url, "/v1/load_lora_adapter", { lora_name: name, lora_path: path });
  const unload = (name: string) => post(served.url, "/v1/unload_lora_adapter", { lora_name: name });

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), "pop-serve-bounds-"));
    root = join(tmp, "adapters");
    outside = join(tmp, "outside");
    await mkdir(join(root, "it1"), { recursive: true });
    await mkdir(outside);
    await copyFile(CHECKPOINT, join(root, "it1", "model.bin"));
    await copyFile(CHECKPOINT, join(root, "a.bin"));
    await copyFile(CHECKPOINT, join(root, "b.bin"));
    await copyFile(CHECKPOINT, join(outside, "model.bin"));
    await writeFile(join(root, "big.bin"), Buffer.alloc(3 * MIB));
    execFileSync("mkfifo", [join(root, "fifo")]);
    await symlink("/dev/zero", join(root, "zero"));
    await symlink(outside, join(root, "out"));
    await symlink(join(tmp, "no-such-dir"), join(root, "dangling"));
    served = await startServe([
      "--adapter-dir",
      root,
      "--max-adapter-bytes",
      String(2 * MIB),
      "--max-adapters",
      "2",
      "--max-in-flight",
      "4",
      "--max-body-bytes",
      String(8 * MIB),
      "--max-body-bytes-in-flight",
      String(16 * MIB),
    ]);
  }, 90_000);
  afterAll(async () => {
    served?.child.kill("SIGKILL");
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("refuses /dev/zero, a FIFO, symlinks out of the root, ../ paths and oversized files, at once and with bounded memory", async () => {
    const rss0 = memoryMib(served.child.pid!, "VmRSS");
    const t0 = performance.now();
    // Outside the root: refused before the file system is asked, the same whether the path exists or not.
    const devZero = await load("z", "/dev/zero");
    expect(devZero.status).toBe(400);
    expect(devZero.body.error.message).toMatch(/outside the adapter root/);
    const up = await load("up", "../outside/model.bin");
    const upMissing = await load("up", "../outside/nothing.bin");
    expect(up.status).toBe(400);
    expect(up.body.error.message).toMatch(/outside the adapter root/);
    expect(upMissing.body.error.message.replace("nothing.bin", "model.bin")).toBe(up.body.error.message);
    expect((await load("abs", join(outside, "model.bin"))).status).toBe(400);
    // Through symlinks out of the root: as if nothing were there, whatever is at the other end.
    const zero = await load("zero", "zero");
    const out = await load("out", join(root, "out"));
    const dangling = await load("dangling", join(root, "dangling"));
    for (const r of [zero, out, dangling]) expect(r.status).toBe(404);
    const reason = (r: Answer) => /\((.*)\)$/.exec(r.body.error.message)?.[1];
    expect(reason(zero)).toBe(reason(dangling));
    expect(reason(out)).toBe(reason(dangling));
    expect(JSON.stringify([zero, out, dangling].map((r) => r.body))).not.toContain(outside);
    expect(JSON.stringify(zero.body)).not.toContain("/dev/zero");
    // Inside the root, but not a regular file or over the cap.
    const fifo = await load("fifo", "fifo");
    expect(fifo.status).toBe(400);
    expect(fifo.body.error.message).toMatch(/not a regular file/);
    const big = await load("big", "big.bin");
    expect(big.status).toBe(400);
    expect(big.body.error.message).toMatch(/over the adapter limit/);
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(memoryMib(served.child.pid!, "VmRSS") - rss0).toBeLessThan(100);
    // Nothing refused was loaded; a regular file under the root still loads.
    const models = (await (await fetch(`${served.url}/v1/models`)).json()) as { data: { id: string }[] };
    expect(models.data.map((m) => m.id)).toEqual([MODEL]);
  });

  it("holds at most --max-adapters adapters: a load beyond is refused with 409 until one is unloaded", async () => {
    expect((await load("one", "it1")).status).toBe(200);
    expect((await load("two", join(root, "a.bin"))).status).toBe(200);
    const third = await load("three", "b.bin");
    expect(third.status).toBe(409);
    expect(third.body.error.message).toMatch(/most adapters \(2/);
    expect((await unload("one")).status).toBe(200);
    expect((await load("three", "b.bin")).status).toBe(200);
    await unload("two");
    await unload("three");
  });

  it("refuses a body over --max-body-bytes with 413, declared or streamed", async () => {
    const big = Buffer.alloc(9 * MIB, 0x20);
    // Declared: refused on the headers alone, before the body is sent.
    let declared: ClientRequest | undefined;
    expect(await rawPost(served.url, "/v1/chat/completions", { "content-length": big.length }, (req) => (declared = req).write("{"))).toBe(413);
    declared?.destroy();
    // Chunked, no length declared: counted as it arrives, refused once past the cap.
    const chunked = await rawPost(served.url, "/v1/chat/completions", { "transfer-encoding": "chunked" }, (req) => {
      for (let i = 0; i < 9; i++) req.write(big.subarray(0, MIB));
      req.end();
    });
    expect([413, 0]).toContain(chunked);
  });

  it("keeps memory bounded under many concurrent large bodies: beyond its caps it answers 503", async () => {
    const pid = served.child.pid!;
    // Peak RSS from now on: "5" resets the process's high-water mark to its current RSS.
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    const before = memoryMib(pid, "VmHWM");
    // 24 bodies of 6 MiB at once, each under the per-body cap: 144 MiB in all, against 16 MiB in flight.
    const text = "a ".repeat(3 * MIB);
    const body = Buffer.from(JSON.stringify({ model: MODEL, n: 100_000, messages: [{ role: "user", content: text }] }));
    const statuses = await Promise.all(
      Array.from({ length: 24 }, () => rawPost(served.url, "/v1/chat/completions", { "content-length": body.length }, (req) => req.end(body))),
    );
    // Admitted ones fail on n (400) after parsing; the others are refused with 503 (or cut off mid-body).
    expect(statuses.filter((s) => s === 503 || s === 0).length).toBeGreaterThan(0);
    expect(statuses.every((s) => [0, 400, 503].includes(s))).toBe(true);
    const grew = memoryMib(pid, "VmHWM") - before;
    console.log(`peak RSS grew by ${grew.toFixed(0)} MiB; statuses ${statuses.join(",")}`);
    expect(grew).toBeLessThan(250);
    // Still answering afterwards.
    expect((await fetch(`${served.url}/v1/models`)).status).toBe(200);
  });

  it("answers 503 with Retry-After beyond --max-in-flight requests", async () => {
    // Four requests whose bodies never finish hold every slot.
    const held: ClientRequest[] = [];
    const pending = Array.from({ length: 4 }, () =>
      rawPost(served.url, "/v1/chat/completions", { "content-length": 1000 }, (req) => {
        held.push(req);
        req.write("{");
      }),
    );
    await new Promise((r) => setTimeout(r, 300));
    const res = await fetch(`${served.url}/v1/models`);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    for (const req of held) req.destroy();
    await Promise.all(pending);
    await new Promise((r) => setTimeout(r, 200));
    expect((await fetch(`${served.url}/v1/models`)).status).toBe(200);
  });
});

describe("pop serve on SIGTERM", () => {
  let tmp: string;
  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("stops within seconds while a load, a slow upload and model work are in flight", async () => {
    tmp = await mkdtemp(join(tmpdir(), "pop-serve-stop-"));
    execFileSync("mkfifo", [join(tmp, "fifo")]);
    const served = await startServe(["--adapter-dir", tmp]);
    // A load of a FIFO (which once waited for a writer forever), an upload that never ends, and model work.
    const loading = post(served.url, "/v1/load_lora_adapter", { lora_name: "f", lora_path: join(tmp, "fifo") }).catch(() => undefined);
    let upload: ClientRequest | undefined;
    const uploading = rawPost(served.url, "/v1/chat/completions", { "content-length": 10 * MIB }, (req) => {
      upload = req;
      req.write('{"messages": "');
    });
    const question = { model: MODEL, n: 64, max_tokens: 4096, messages: [{ role: "user", content: "what color is the circle ".repeat(200) }] };
    const working = Array.from({ length: 8 }, () => post(served.url, "/v1/chat/completions", question).catch(() => undefined));
    await new Promise((r) => setTimeout(r, 500));
    const t0 = performance.now();
    served.child.kill("SIGTERM");
    expect(await served.exited).toBe(0);
    expect(performance.now() - t0).toBeLessThan(6_000);
    upload?.destroy();
    await Promise.all([loading, uploading, ...working]);
  }, 90_000);
});
