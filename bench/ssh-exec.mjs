#!/usr/bin/env node
// Per-exec overhead of SshTransport over one connection: starts the test sshd, runs `true`
// N times in sequence, prints median and p95. Needs root (for sshd), like the integration tests.
// Node 20 cannot run TypeScript itself, so the sources are loaded through vite-node (it ships
// with vitest), the same way the tests see them.
//   node bench/ssh-exec.mjs [N] [--user NAME]
// Every exec starts the login user's shell on the node, and bash sources ~/.bashrc for SSH
// commands: a heavy ~/.bashrc (pyenv init, conda…) dominates the figure. --user logs in as
// another local account (the test sshd accepts its key for anyone) to see baton's own share.
import { ViteNodeServer } from 'vite-node/server';
import { ViteNodeRunner } from 'vite-node/client';
import { createServer as createViteServer } from 'vite';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { chmodSync } from 'node:fs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const userAt = args.indexOf('--user');
const user = userAt >= 0 ? args.splice(userAt, 2)[1] : undefined;
const N = Number(args[0] ?? 200);

const vite = await createViteServer({ root, logLevel: 'error', server: { hmr: false }, optimizeDeps: { noDiscovery: true, include: [] } });
await vite.pluginContainer.buildStart({});
const node = new ViteNodeServer(vite);
const runner = new ViteNodeRunner({
  root,
  fetchModule: (id) => node.fetchModule(id),
  resolveId: (id, importer) => node.resolveId(id, importer),
});
const { startSshd } = await runner.executeFile(join(root, 'test/helpers/sshd.ts'));
const { SshTransport } = await runner.executeFile(join(root, 'src/transport/ssh.ts'));

const sshd = await startSshd();
if (user) {
  // sshd reads authorized_keys as the user logging in; let it through the private temp dir.
  chmodSync(sshd.dir, 0o711);
  chmodSync(join(sshd.dir, 'authorized_keys'), 0o644);
}
const t = new SshTransport(
  { host: 'bench', connection: 'ssh', address: sshd.host, port: sshd.port, user: user ?? sshd.user, privateKeyFile: sshd.clientKey, knownHostsFile: sshd.knownHosts },
  { sshConfigFile: null },
);
try {
  await t.connect();
  for (let i = 0; i < 5; i++) await t.exec(['true']); // warm up
  const times = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    const r = await t.exec(['true']);
    times.push(performance.now() - t0);
    if (r.code !== 0) throw new Error(`true exited ${r.code}: ${r.stderr}`);
  }
  times.sort((a, b) => a - b);
  const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
  console.log(`ssh exec \`true\` as ${user ?? sshd.user} x${N} over one connection: median ${q(0.5).toFixed(2)} ms, p95 ${q(0.95).toFixed(2)} ms, min ${times[0].toFixed(2)} ms; sshd saw ${sshd.connectionCount()} connection(s)`);
} finally {
  await t.close();
  await sshd.stop();
  await vite.close();
}
