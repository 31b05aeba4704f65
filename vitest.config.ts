import { defineConfig } from 'vitest/config';

// Tests talk to real PGlite/PostgreSQL, real TLS and real tools, so they get
// generous timeouts; speed goals live in `npm run bench`, not here.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Migrated database templates for the run (PGlite dumps, an on-disk pgdata, a PostgreSQL template).
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
