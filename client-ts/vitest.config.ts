import { defineConfig } from "vitest/config";

// Unit, React and type-level tests. The integration test against a real
// gateway has its own config (vitest.integration.config.ts).
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "test/**/*.test.tsx"],
    typecheck: {
      enabled: true,
      include: ["test/**/*.test-d.ts"],
      tsconfig: "./tsconfig.typetest.json",
    },
  },
});
