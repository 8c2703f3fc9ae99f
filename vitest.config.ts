import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["libs/*/src/**/*.test.ts", "services/*/src/**/*.test.ts", "test/**/*.test.ts"],
    globalSetup: ["test/support/require-services.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration suites each make their own database; two at a time suits a 2-core machine.
    maxWorkers: 2,
  },
});
