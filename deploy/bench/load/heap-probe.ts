/**
 * Preloaded (`node --import`) into a process the memory benchmark watches: after every full
 * garbage collection it reads the heap still in use, which is what the process holds, and on
 * exit writes the largest such reading to $POP_HEAP_PROBE_FILE as `{"liveHeapMb": n}`. Peak RSS
 * also counts the room V8 leaves itself before collecting, which grows with a run's length
 * whatever the process holds.
 */
import { writeFileSync } from "node:fs";
import { constants, PerformanceObserver } from "node:perf_hooks";
import { getHeapStatistics } from "node:v8";
import { isMainThread } from "node:worker_threads";

const file = process.env.POP_HEAP_PROBE_FILE;
if (file && isMainThread) {
  let liveMb = 0;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if ((entry as { detail?: { kind?: number } }).detail?.kind !== constants.NODE_PERFORMANCE_GC_MAJOR) continue;
      liveMb = Math.max(liveMb, getHeapStatistics().used_heap_size / 2 ** 20);
    }
  }).observe({ entryTypes: ["gc"] });
  process.on("exit", () => writeFileSync(file, JSON.stringify({ liveHeapMb: liveMb }) + "\n"));
}
