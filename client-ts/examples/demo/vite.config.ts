import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

// The demo imports the package from its sources (../../src), so it always
// shows the code in this repository and builds with this folder's own
// `npm ci`. `dedupe` makes the sources' imports of React and TanStack Query
// resolve to this folder's node_modules, never to a second copy.
//
// `npm run dev` serves the page with hot reload and forwards /api and /ws to
// a running `ripple dev` (RIPPLE_URL, default http://127.0.0.1:8080).
const ripple = process.env.RIPPLE_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  resolve: {
    alias: { "@ripple-rt/client": fileURLToPath(new URL("../../src/index.ts", import.meta.url)) },
    dedupe: ["react", "react-dom", "@tanstack/react-query", "@tanstack/query-core"],
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    rollupOptions: {
      // TanStack Query's "use client" directives mean nothing in a bundle.
      onwarn(warning, warn) {
        if (warning.code === "MODULE_LEVEL_DIRECTIVE") return;
        warn(warning);
      },
    },
  },
  server: {
    proxy: {
      "/api": ripple,
      "/ws": { target: ripple.replace(/^http/, "ws"), ws: true },
    },
  },
});
