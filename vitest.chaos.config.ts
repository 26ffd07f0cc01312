import { defineConfig } from "vitest/config";

/**
 * Fault scenarios that run for minutes and stress a cluster (`npm run chaos`), kept out of
 * `npm test`. See test/chaos/.
 */
export default defineConfig({
  test: {
    include: ["test/chaos/**/*.test.ts"],
    testTimeout: 600_000,
    hookTimeout: 60_000,
    maxWorkers: 1,
    pool: "forks",
  },
});
