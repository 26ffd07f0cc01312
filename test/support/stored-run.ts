/** A small stored run (two members, iterations 0..2, with times and training curves) for report, scalar and compare tests. */
import type { StoredRun } from "../../deploy/observe/report/collect.ts";
import * as msg from "./messages.ts";

/** `scale` shifts the members' later scores, so two runs differ. */
export function storedRun(experiment: string, scale = 1): StoredRun {
  const t0 = 1_700_000_000_000;
  const evaluations = [0, 1, 2].flatMap((iteration) =>
    ["a", "b"].map((peer) => {
      const x = Math.min(1, 0.4 + 0.1 * iteration * scale + (peer === "b" ? 0.05 : 0));
      const y = Math.min(1, 0.6 + 0.05 * iteration * scale);
      return msg.evaluation({ experiment, iteration, peer, suites: { x, y }, average: (x + y) / 2, ms: 200, at: t0 + iteration * 10_000 });
    }),
  );
  const control = [1, 2].flatMap((iteration) => {
    const opened = t0 + (iteration - 1) * 10_000 + 1_000;
    return [
      msg.control("iteration_opened", { iteration, peers: ["a", "b"], prompts: 4, at: opened }, experiment),
      msg.control("iteration_closed", { iteration, voted: 4, pairs: 3, at: opened + 3_000 }, experiment),
      ...["a", "b"].map((peer) =>
        msg.control(
          "training_done",
          {
            iteration,
            peer,
            modelVersion: `${peer}${iteration}`,
            result: {
              steps: 4,
              pairs: 3,
              lossFirst: 2 / iteration,
              lossLast: 1 / iteration,
              marginBefore: 0,
              marginAfter: 0.5,
              ms: 1_500,
              curve: [
                [2, 1.5 / iteration, 0.25],
                [4, 1 / iteration, 0.5],
              ] as [number, number, number][],
            },
            at: opened + 5_000,
          },
          experiment,
        ),
      ),
    ];
  });
  const stamps = (offset: number) => [1, 2].map((iteration) => ({ iteration, at: t0 + (iteration - 1) * 10_000 + 1_000 + offset }));
  return { experiment, evaluations, pairs: [], control, activity: { candidates: stamps(1_000), verdicts: stamps(2_000) } };
}
