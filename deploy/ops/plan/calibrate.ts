/**
 * `pop plan`'s calibration: every member at once, each in a process of its own, as the panel runs
 * them. Members whose servers share a GPU or a host slow each other down in the run, so their
 * figures are taken while they do (each calibrated alone gave a third of the real time when
 * three servers shared two cores); measuring starts when every member's server is warm, so one
 * server's loading does not count as another's load.
 */
import { fork, type ChildProcess } from "node:child_process";
import { availableParallelism } from "node:os";
import { localServerPid, machineBusySeconds, treeCpuSeconds } from "./host-cpu.ts";
import { MemberRefusedError, MemberUnreachableError } from "./errors.ts";
import type { CalibrationOptions, HostReading, MemberCalibration, PlanMember } from "./calibrate-member.ts";
import type { WorkerInput, WorkerMessage } from "./calibrate-worker.ts";

export type { CalibrationOptions, HostReading, MemberCalibration, PhaseMeasure, PlanMember } from "./calibrate-member.ts";

const WORKER = new URL("./calibrate-worker.ts", import.meta.url);

/**
 * Starts one member's calibration process: detached, so it is scheduled as a peer started on its
 * own is (its own session), and structured clone carries the prompts' image bytes.
 */
function start(input: WorkerInput): ChildProcess {
  const child = fork(WORKER, [], {
    execArgv: ["--import", "tsx"],
    serialization: "advanced",
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    detached: true,
  });
  child.send(input);
  return child;
}

/** Calibrates `members` together; the first member to fail fails the whole calibration. */
export async function calibrate(members: PlanMember[], options: CalibrationOptions): Promise<MemberCalibration[]> {
  const { onProgress, ...rest } = options;
  const workers = members.map((member) => start({ member, options: rest }));
  // Servers on this machine, each once (several members may share one): their CPU over the measured passes.
  const pids = [...new Set(members.map((m) => localServerPid(m.baseUrl)).filter((p) => p !== undefined))];
  const localServers = members.filter((m) => localServerPid(m.baseUrl) !== undefined).length;
  const read = () => {
    const t = treeCpuSeconds(Object.fromEntries(pids.map((p) => [String(p), p])));
    return { at: performance.now(), servers: Object.values(t).reduce((a, b) => a + b, 0), machine: machineBusySeconds() };
  };
  let before: ReturnType<typeof read> | undefined;
  let warm = 0;
  try {
    const results = await Promise.all(
      workers.map(
        (worker, i) =>
          new Promise<MemberCalibration>((resolve, reject) => {
            worker.on("message", (m: WorkerMessage) => {
              if ("warm" in m && ++warm === workers.length) {
                before = read();
                for (const w of workers) w.send("go");
              } else if ("progress" in m) onProgress?.(members[i]!.name, m.progress.phase, m.progress.done, m.progress.total);
              else if ("result" in m) resolve(m.result);
              else if ("error" in m) reject(revive(m.error));
            });
            worker.once("error", reject);
            worker.once("exit", (code) => reject(new Error(`the calibration of member '${members[i]!.name}' ended (code ${code})`)));
          }),
      ),
    );
    const after = read();
    if (before && pids.length) {
      const host: HostReading = {
        wallSeconds: (after.at - before.at) / 1000,
        serverCpuSeconds: after.servers - before.servers,
        localServers,
        cores: availableParallelism(),
        machineBusySeconds: after.machine - before.machine,
      };
      for (const r of results) r.host = host;
    }
    return results;
  } finally {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill();
  }
}

/** A worker's error as its class (a thread passes only its name and message). */
function revive(e: { name: string; message: string }): Error {
  if (e.name === MemberRefusedError.name) return new MemberRefusedError(e.message);
  if (e.name === MemberUnreachableError.name) return new MemberUnreachableError(e.message);
  const error = new Error(e.message);
  error.name = e.name;
  return error;
}
