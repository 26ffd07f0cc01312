/**
 * The demo's PyTorch member (`pop demo --with-python`): a process peer running
 * actors/process-peer/torch_peer with an interpreter that has torch, benchmarked by its actor on
 * the same tiny suites the TypeScript members evaluate themselves on.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { PopError } from "../../protocol/errors.ts";

/** Its peer name in the panel. */
export const PYTHON_MEMBER = "pytorch";
/** The package, run as a directory (`python3 .../torch_peer`). */
export const TORCH_PEER_DIR = fileURLToPath(new URL("../../actors/process-peer/torch_peer", import.meta.url));

/** No Python interpreter here can import torch. Not retryable: installing it is a person's job. */
export class TorchMissingError extends PopError {}

/**
 * The interpreter for the PyTorch member: POP_PYTHON, else Debian's /usr/bin/python3 (where
 * python3-torch installs; a pyenv or conda `python3` first on PATH usually has no torch).
 * Throws {@link TorchMissingError} saying how to get torch when it cannot import it.
 */
export function torchPython(env: NodeJS.ProcessEnv = process.env): string {
  const python = env.POP_PYTHON || "/usr/bin/python3";
  const probe = spawnSync(python, ["-c", "import torch, numpy"], { encoding: "utf8", timeout: 120_000 });
  if (probe.error || probe.status !== 0) {
    const why = probe.error ? probe.error.message : (probe.stderr ?? "").trim().split("\n").pop();
    throw new TorchMissingError(
      `the PyTorch member needs torch and numpy, but ${python} cannot import them (${why}). ` +
        "On Debian/Ubuntu: sudo apt-get install python3-torch (or bash deploy/ops/setup.sh as root); otherwise set POP_PYTHON to an interpreter with torch.",
    );
  }
  return python;
}

/** `pop actor` options that make a peer the PyTorch member (besides --peer, the server and its key). */
export function torchPeerActorArgs(python: string, o: { workDir: string; bench: string; weights?: string }): string[] {
  const cmd = [python, TORCH_PEER_DIR, ...(o.weights ? ["--weights", o.weights] : [])].map(shellQuote).join(" ");
  return ["--backend", "process", "--cmd", cmd, "--work-dir", o.workDir, "--bench", o.bench];
}

function shellQuote(s: string): string {
  return /^[\w./=+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
