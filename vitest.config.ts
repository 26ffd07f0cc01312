import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Randomized fault runs are a script of their own: npm run chaos (test/chaos/run.ts).
    exclude: ["test/chaos/**", "**/node_modules/**"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests start real servers and model processes; two cores do not gain from more parallel files.
    maxWorkers: 2,
    pool: "forks",
    // Scripts that measure write a results file into docs/results/ (deploy/observe/results/);
    // the demo runs of the tests (and the processes they start, which inherit this) write none.
    env: { POP_RESULTS: "none" },
  },
});
