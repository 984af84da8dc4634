import { defineConfig } from 'vitest/config';

// Four suites: unit (no root, no network), integration (a real sshd on loopback, no root
// needed beyond being able to run sshd), lab (root, real namespaces; says so loudly otherwise),
// faults (root, lab: faults injected at every step of the shipped playbooks, test/faults/).
export default defineConfig({
  test: {
    reporters: ['default', 'junit'],
    outputFile: { junit: 'test-results/junit.xml' },
    projects: [
      // Some unit tests run the CLI as a child process: on a loaded 2-core machine one may take
      // seconds, so vitest's 5 s default would fail them for the machine's load, not for baton.
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 30_000 } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'lab',
          include: ['test/lab/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
      {
        // The fault suite (root, lab): one case at a time on each of its six labs.
        test: {
          name: 'faults',
          include: ['test/faults/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          maxConcurrency: 6,
        },
      },
    ],
  },
});
