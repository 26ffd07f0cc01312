/**
 * What the page inlines from node_modules, read once when the server starts: uPlot's script and
 * styles (the training plots), so the page loads nothing from the network.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

/** uPlot as the page inlines it. */
export interface PageAssets {
  uplotJs: string;
  uplotCss: string;
}

/** uPlot's files are not where the installed package puts them (node_modules incomplete). */
export class DashboardAssetMissingError extends Error {
  readonly retryable = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DashboardAssetMissingError";
  }
}

function read(require: NodeJS.Require, file: string): string {
  try {
    return readFileSync(require.resolve(file), "utf8");
  } catch (error) {
    throw new DashboardAssetMissingError(`the dashboard needs ${file} (the 'uplot' dependency): run npm install`, { cause: error });
  }
}

export function readPageAssets(): PageAssets {
  const require = createRequire(import.meta.url);
  return {
    // A closing tag inside the inlined text would end the page's element early.
    uplotJs: read(require, "uplot/dist/uPlot.iife.min.js").replace(/<\/(script)/gi, "<\\/$1"),
    uplotCss: read(require, "uplot/dist/uPlot.min.css").replace(/<\/(style)/gi, "<\\/$1"),
  };
}
