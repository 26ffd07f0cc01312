/**
 * Every npm-script tool answers `--help` and refuses an unknown option through pop's own parser
 * (deploy/cli/script-flags.ts): help on stdout, exit 0; one line and exit 2, no stack trace.
 * And `pop pretrain` refuses to overwrite the shipped checkpoints unless told to.
 */
import { execFile } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { CHECKPOINT_DIR } from "../../actors/models/tiny/checkpoints.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const scripts = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).scripts as Record<string, string>;
/** The scripts that run a TypeScript file of ours with tsx: name -> the file. */
const tools = Object.entries(scripts).flatMap(([name, cmd]) => {
  const m = /tsx (\S+\.ts)/.exec(cmd);
  // deploy/cli/cli.ts is pop itself (npm run demo), whose help has its own test.
  return m && m[1] !== "deploy/cli/cli.ts" ? [[name, m[1]!] as const] : [];
});

/** Runs a tool to its end (asynchronously, so the tools' tests overlap on both cores). */
function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", ...args], { cwd: ROOT, encoding: "utf8", timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ status: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout, stderr }),
    );
  });
}

describe.concurrent("npm-script tools", () => {
  it("finds the tools", () => {
    expect(tools.map(([name]) => name)).toEqual(expect.arrayContaining(["simulate:pop", "model:table", "bench:cost", "chaos", "demo:hostile"]));
  });
  for (const [name, file] of tools) {
    it(`${name} answers --help and refuses an unknown option`, async () => {
      const help = await run([file, "--help"]);
      expect(help.status, help.stderr).toBe(0);
      expect(help.stdout).toMatch(/^npm run /);
      const bad = await run([file, "--no-such-option"]);
      expect(bad.status).toBe(2);
      expect(bad.stderr).toContain("unknown option: --no-such-option");
      expect(bad.stderr).not.toMatch(/^\s+at /m);
    }, 120_000);
  }
});

describe("pop pretrain", () => {
  const cli = join(ROOT, "deploy/cli/cli.ts");
  it("answers --help", async () => {
    const r = await run([cli, "pretrain", "--help"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("pop pretrain --peer NAME --out FILE");
  });
  it("refuses to overwrite a shipped checkpoint unless --overwrite-shipped", async () => {
    const file = join(CHECKPOINT_DIR, "ocrdumb.bin");
    const before = statSync(file).mtimeMs;
    for (const args of [
      ["--peer", "ocrdumb", "--out", file],
      ["--peer", "ocrdumb", "--out", file, "--force"],
      ["--out", CHECKPOINT_DIR],
    ]) {
      const r = await run([cli, "pretrain", ...args]);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toContain("--overwrite-shipped");
    }
    expect(statSync(file).mtimeMs).toBe(before);
  }, 60_000);
});
