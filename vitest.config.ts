import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Long fault scenarios run on their own: npm run chaos (vitest.chaos.config.ts).
    exclude: ["test/chaos/**", "**/node_modules/**"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests start real servers and model processes; two cores do not gain from more parallel files.
    maxWorkers: 2,
    pool: "forks",
  },
});
