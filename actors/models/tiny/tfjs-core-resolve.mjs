// Resolve hook for tfjs-core's ES module tree (dist/*.js), loaded by tf.ts before the tree's
// gradient registrations. The tree was written for bundlers: its imports carry no extension and
// "./gradients" names both a file and a folder, which Node's ES loader (and tsx's) refuse. Inside
// that tree only, an extensionless relative import resolves to the ".js" file when there is one.
import { existsSync } from "node:fs";

const TREE = "/@tensorflow/tfjs-core/dist/";

export async function resolve(specifier, context, next) {
  const parent = context.parentURL ?? "";
  if (parent.includes(TREE) && specifier.startsWith(".") && !specifier.endsWith(".js")) {
    const url = new URL(`${specifier}.js`, parent);
    if (existsSync(url)) return { url: url.href, format: "module", shortCircuit: true };
  }
  return next(specifier, context);
}

// The package's own CommonJS bundles (dist/tf-core*.js) stay as they are.
const BUNDLE = /\/dist\/tf-core[^/]*\.js$/;

export async function load(url, context, next) {
  // the tree's files are ES modules in a package that does not declare "type": "module"
  if (url.includes(TREE) && url.endsWith(".js") && !BUNDLE.test(url)) return next(url, { ...context, format: "module" });
  return next(url, context);
}
