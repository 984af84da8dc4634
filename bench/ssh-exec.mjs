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
import { chmodSync, readFileSync } from 'node:fs';
import ssh2 from 'ssh2';

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
  // Reference: bare ssh2 exec of `true`, no wrapper, no queue. The difference is baton's share;
  // the rest is sshd and the login shell on the node.
  const raw = new ssh2.Client();
  await new Promise((res, rej) => {
    raw.once('ready', res).once('error', rej);
    raw.connect({ host: sshd.host, port: sshd.port, username: user ?? sshd.user, privateKey: readFileSync(sshd.clientKey) });
  });
  const rawTimes = [];
  for (let i = 0; i < Math.min(N, 50); i++) {
    const t0 = performance.now();
    await new Promise((res, rej) =>
      raw.exec('true', (e, ch) => (e ? rej(e) : ch.on('close', res).resume().stderr.resume())),
    );
    rawTimes.push(performance.now() - t0);
  }
  raw.end();
  rawTimes.sort((a, b) => a - b);
  times.sort((a, b) => a - b);
  const pct = (arr, p) => arr[Math.min(arr.length - 1, Math.floor(p * arr.length))];
  const q = (p) => pct(times, p);
  console.log(`reference: bare ssh2 exec \`true\` x${rawTimes.length}: median ${pct(rawTimes, 0.5).toFixed(2)} ms, p95 ${pct(rawTimes, 0.95).toFixed(2)} ms`);
  console.log(`ssh exec \`true\` as ${user ?? sshd.user} x${N} over one connection: median ${q(0.5).toFixed(2)} ms, p95 ${q(0.95).toFixed(2)} ms, min ${times[0].toFixed(2)} ms; sshd saw ${sshd.connectionCount()} connection(s)`);
} finally {
  await t.close();
  await sshd.stop();
  await vite.close();
}
