// build-bundle builds dist/ripple-bundle.js: an ES2020 IIFE that defines the
// global `RippleBundle` (RealtimeClient, bindQuery, applyChange,
// applyChangeToRecord, QueryClient, …) for engines without modules: the e2e
// tests' QuickJS, and Node through `vm` or an indirect eval. It needs no
// browser globals: no WebSocket (pass one to RealtimeClient), no
// AbortController (an injected stand-in is used when the engine lacks it), no
// URL, TextEncoder or fetch; only setTimeout/clearTimeout for query-core.
//
//   node scripts/build-bundle.mjs            writes dist/ripple-bundle.js
//   import { bundleOptions } from "./scripts/build-bundle.mjs"   (tests)
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

/** bundleOptions are the esbuild options of the bundle; tests build with them in memory. */
export const bundleOptions = {
  absWorkingDir: root,
  entryPoints: ["src/bundle/index.ts"],
  bundle: true,
  format: "iife",
  globalName: "RippleBundle",
  target: "es2020",
  platform: "neutral",
  mainFields: ["module", "main"],
  define: { "process.env.NODE_ENV": '"production"' },
  inject: ["src/bundle/abort-controller.ts"],
  footer: { js: "globalThis.RippleBundle = RippleBundle;" },
  legalComments: "none",
  logLevel: "warning",
};

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await build({ ...bundleOptions, outfile: "dist/ripple-bundle.js" });
}
