/**
 * Reading report.json back, whichever schema version wrote it: a v1 report (no schemaVersion,
 * before #29) is upgraded to the current shape (curve points and loss terms named, provenance
 * unknown, no timeline), so readers handle one shape only.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { PopError } from "../../../protocol/mod.ts";
import { REPORT_SCHEMA_VERSION, type Report } from "./shape.ts";

/** A report.json that cannot be read as a report. */
export class ReportReadError extends PopError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, retryable: false });
  }
}

type V1Row = { terms?: Record<string, [number, number]>; curve?: [number, number, number][] };

/** The current shape of a parsed report.json of any known schema version. */
export function upgradeReport(json: unknown, source = "report.json"): Report {
  if (!json || typeof json !== "object" || !Array.isArray((json as Report).iterations) || !Array.isArray((json as Report).peers))
    throw new ReportReadError(`${source} is not a Panel-of-Peers report (no peers or iterations)`);
  const r = json as Record<string, unknown>;
  const version = r.schemaVersion ?? 1;
  if (version === REPORT_SCHEMA_VERSION) return json as Report;
  if (version !== 1) throw new ReportReadError(`${source} has schemaVersion ${String(version)}; this code reads 1 and ${REPORT_SCHEMA_VERSION}`);
  const training = ((r.training as (V1Row & Record<string, unknown>)[] | undefined) ?? []).map(({ terms, curve, ...row }) => ({
    ...row,
    ...(terms ? { terms: Object.fromEntries(Object.entries(terms).map(([k, [first, last]]) => [k, { first, last }])) } : {}),
    ...(curve ? { curve: curve.map(([step, loss, margin]) => ({ step, loss, margin })) } : {}),
  }));
  return {
    ...(r as object),
    schemaVersion: REPORT_SCHEMA_VERSION,
    commit: null,
    date: null,
    versions: null,
    training,
    timeline: { iterations: [] },
  } as unknown as Report;
}

/** The report of a run folder (its report.json) or of a report.json path. */
export function loadReport(path: string): Report {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, "report.json") : path;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (cause) {
    throw new ReportReadError(`cannot read ${file}`, { cause });
  }
  try {
    return upgradeReport(JSON.parse(text), file);
  } catch (cause) {
    if (cause instanceof ReportReadError) throw cause;
    throw new ReportReadError(`${file} is not valid JSON`, { cause });
  }
}
