import { defineConfig } from "vitest/config";

// The integration test: Node against the real gateway and a real Postgres
// (`ripple dev`, built from ../backend). Slow to start, so kept apart from
// the unit tests: `npm run test:integration`.
export default defineConfig({
  test: {
    include: ["integration/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 240_000,
    fileParallelism: false,
  },
});
