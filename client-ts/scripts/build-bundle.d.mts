import type { BuildOptions } from "esbuild";

/** bundleOptions are the esbuild options of dist/ripple-bundle.js. */
export declare const bundleOptions: BuildOptions;
