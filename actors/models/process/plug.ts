/** The `process` backend kind: a model in a program of its own, spoken to over stdin/stdout. */
import { BackendConfigError, type BackendPlug } from "../registry.ts";
import { ProcessBackend, type ProcessBackendOptions } from "./backend.ts";

export const processPlug: BackendPlug<ProcessBackendOptions> = {
  kind: "process",
  summary: "a model in a program of its own, any language, speaking JSON lines on stdin/stdout (docs/process-peer.md)",
  options: [
    { flag: "cmd", value: "CMD", help: 'the program, run with sh -c, e.g. "python3 my_peer.py" (required)' },
    { flag: "request-timeout-s", value: "S", help: "deadline of an answer, judge, load or evaluate request", default: "600" },
    { flag: "train-timeout-s", value: "S", help: "deadline of a train request", default: "86400" },
    { flag: "start-timeout-s", value: "S", help: "time the program has to say hello", default: "60" },
    { flag: "restart-backoff-s", value: "S", help: "first restart delay after a failure, doubled with each failure in a row", default: "0.5" },
    { flag: "work-dir", value: "DIR", help: "training work directories and unpacked adapters", default: "./pop-work" },
  ],
  configure(read) {
    const command = read.string("cmd");
    if (!command?.trim()) throw new BackendConfigError('--backend process needs --cmd CMD (e.g. --cmd "python3 my_peer.py")');
    const seconds = (name: string, d: number) => (read.number(name, { min: 0.001 }) ?? d) * 1000;
    return {
      command,
      timeoutMs: seconds("request-timeout-s", 600),
      trainTimeoutMs: seconds("train-timeout-s", 86_400),
      startTimeoutMs: seconds("start-timeout-s", 60),
      backoffMs: seconds("restart-backoff-s", 0.5),
      workDir: read.string("work-dir"),
    };
  },
  open(spec, { log }) {
    return ProcessBackend.open(spec, log);
  },
};
