/**
 * Preloaded (`node --import`) into a process the memory benchmark watches: after every full
 * garbage collection it reads the heap still in use, which is what the process holds, and on
 * exit writes the largest such reading to $POP_HEAP_PROBE_FILE as `{"liveHeapMb": n, ...}`. Peak
 * RSS also counts the room V8 leaves itself before collecting, which grows with a run's length
 * whatever the process holds; so it also writes the peaks of V8's heap as reserved
 * (`heapTotalMb`) and of memory outside it (`externalMb`: buffers, e.g. messages' bytes), read
 * every 250 ms, to tell which of them a peak RSS is made of.
 */
import { writeFileSync } from "node:fs";
import { constants, PerformanceObserver } from "node:perf_hooks";
import { getHeapStatistics } from "node:v8";
import { isMainThread } from "node:worker_threads";

const file = process.env.POP_HEAP_PROBE_FILE;
if (file && isMainThread) {
  const MB = 2 ** 20;
  let liveMb = 0;
  let heapTotalMb = 0;
  let externalMb = 0;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if ((entry as { detail?: { kind?: number } }).detail?.kind !== constants.NODE_PERFORMANCE_GC_MAJOR) continue;
      liveMb = Math.max(liveMb, getHeapStatistics().used_heap_size / MB);
    }
  }).observe({ entryTypes: ["gc"] });
  const sample = () => {
    const m = process.memoryUsage();
    heapTotalMb = Math.max(heapTotalMb, m.heapTotal / MB);
    externalMb = Math.max(externalMb, m.external / MB);
  };
  setInterval(sample, 250).unref();
  process.on("exit", () => {
    sample();
    writeFileSync(file, JSON.stringify({ liveHeapMb: liveMb, heapTotalMb, externalMb }) + "\n");
  });
}
