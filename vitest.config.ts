import { defineConfig } from "vitest/config";

// The contract suite runs once per store: always on SQLite, and on PostgreSQL when
// TEST_DATABASE_URL names a server whose user may create databases (.ci/run sets it).
const storeSuites = [
  "test/mcp-servers.test.ts",
  "test/secrets.test.ts",
  "test/restart-and-faults.test.ts",
  "test/connections.test.ts",
  "test/availability.test.ts",
  "test/multi-process.test.ts",
  "test/hardening.test.ts",
  "test/key-rotation.test.ts",
  "test/oauth.test.ts",
  "test/oauth-registrations.test.ts",
  "test/fuzz.test.ts",
  "test/soak.test.ts",
  "test/db-unlock.test.ts",
  "test/rate-limit.test.ts",
  "test/secret-headers.test.ts",
  "test/catalog.test.ts",
  "test/tokens.test.ts",
  "test/user-connections.test.ts",
  "test/connectors.test.ts",
  "test/gateway-caches.test.ts",
  "test/health.test.ts",
  "test/activity.test.ts",
  "test/namespaces.test.ts",
  "test/audit-trail.test.ts",
  "test/audit-batch.test.ts",
  "test/unauthenticated-rate-limit.test.ts",
  "test/tool-pins.test.ts",
  "test/toolsets.test.ts",
  "test/built-server.test.ts",
  "test/gateway-multi-process.test.ts",
  "test/gateway-workspace-agent.test.ts",
  "test/gateway-workspace-listen.test.ts",
  "test/hot-statements.test.ts",
];

export default defineConfig({
  test: {
    globalSetup: ["test/helpers/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: "sqlite", include: ["test/**/*.test.ts"], env: { TEST_STORE: "sqlite" } } },
      ...(process.env.TEST_DATABASE_URL
        ? [{ extends: true as const, test: { name: "postgres", include: storeSuites, env: { TEST_STORE: "postgres" } } }]
        : []),
    ],
  },
});
