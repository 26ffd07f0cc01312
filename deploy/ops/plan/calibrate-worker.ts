/**
 * One member's calibration in a process of its own (./calibrate.ts forks it), as each peer runs
 * in a process of its own: its client work (encoding images, reading replies) runs beside the
 * others' and gets the CPU share a peer gets, rather than queued behind theirs on one thread.
 */
import { calibrateMember, type CalibrationOptions, type PlanMember } from "./calibrate-member.ts";

/** What the parent sends at start. */
export interface WorkerInput {
  member: PlanMember;
  options: Omit<CalibrationOptions, "onProgress">;
}

/** Messages to the parent (the first message from it is a WorkerInput); the parent answers `warm` with `go` once every member is warm. */
export type WorkerMessage =
  | { warm: true }
  | { progress: { phase: "answer" | "judge"; done: number; total: number } }
  | { result: Awaited<ReturnType<typeof calibrateMember>> }
  | { error: { name: string; message: string } };

const post = (m: WorkerMessage) => process.send!(m);
// Gone with the parent: a plan stopped or failed leaves no calibration behind.
process.on("disconnect", () => process.exit(0));
const { member, options } = await new Promise<WorkerInput>((resolve) => process.once("message", resolve));
const go = new Promise<void>((resolve) => process.once("message", () => resolve()));

calibrateMember(member, { ...options, onProgress: (_m, phase, done, total) => post({ progress: { phase, done, total } }) }, () => {
  post({ warm: true });
  return go;
}).then(
  (result) => post({ result }),
  (error: unknown) => post({ error: { name: (error as Error)?.name ?? "Error", message: (error as Error)?.message ?? String(error) } }),
);
