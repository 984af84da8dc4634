#!/usr/bin/env node
// `npm run demo`: the main job on the built-in lab, start to finish.
//   lab up → start NFS on n1 → the client writes a file through the VIP
//   → switchover n1→n2 → read back → undo the switchover → read back
//   → switchover again → power-fail n2 → failover to n1 with IPMI fencing → read back → lab down
// It prints each run's recap and what the client saw (reads every 50 ms during each move).
// Needs root (the lab is made of namespaces); without root it says so and runs the local
// example playbook instead.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(root, 'dist', 'cli', 'main.js');
const LAB = 'demo';
const SUBNET = '198.18.5.0/24';
const FILE = '/disk1/demo-payload.bin';
// Read every 50 ms during each move: small, so the outage is measured and not the transfer.
const PROBE = '/disk1/demo-probe.bin';
const state = mkdtempSync(path.join(os.tmpdir(), 'baton-demo-'));
const env = { ...process.env, BATON_STATE_DIR: state };

const say = (s = '') => process.stdout.write(`${s}\n`);
const banner = (s) => say(`\n\x1b[1m=== ${s}\x1b[0m`);

/** Run the CLI without blocking (the client keeps reading meanwhile); print its output. */
function baton(args, { quiet = false } = {}) {
  say(`$ baton ${args.join(' ')}`);
  return new Promise((resolve, reject) => {
    const c = spawn('node', [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (b) => (out += b));
    c.stderr.on('data', (b) => (out += b));
    c.on('close', (code) => {
      if (!quiet) say(out.trimEnd().split('\n').map((l) => `  ${l}`).join('\n'));
      if (code !== 0) reject(new Error(`baton ${args[0]} exited ${code}`));
      else resolve(out);
    });
  });
}

if (process.getuid?.() !== 0) {
  say('The lab needs root (it builds network, mount and PID namespaces). Not root: running the');
  say('local example playbook instead (no namespaces, no NFS).');
  await baton(['run', '--yes', path.join(root, 'playbooks/examples/local-demo.yml')]);
  rmSync(state, { recursive: true, force: true });
  process.exit(0);
}

spawnSync('bash', [path.join(root, 'scripts/install-lab-deps.sh')], { stdio: 'inherit' });

let inventory;
let vip;
let netns;

function clientRead() {
  const r = spawnSync('ip', ['netns', 'exec', netns, 'nfs-cat', `nfs://${vip}${FILE}?version=4`], { maxBuffer: 64 << 20, timeout: 15000 });
  if (r.status !== 0) throw new Error(`the client could not read ${FILE} through ${vip}: ${r.stderr.toString().trim()}`);
  return createHash('sha256').update(r.stdout).digest('hex');
}

/** Reads every 50 ms while fn runs; prints the outage windows the client saw. */
async function watched(what, fn) {
  const samples = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t = Date.now();
      const ok = await new Promise((res) => {
        const c = spawn('ip', ['netns', 'exec', netns, 'nfs-cat', `nfs://${vip}${PROBE}?version=4`], { stdio: ['ignore', 'ignore', 'ignore'] });
        // A read that hangs for 300 ms counts as failed (a normal one takes ~20 ms here).
        const timer = setTimeout(() => c.kill('SIGKILL'), 300);
        c.on('close', (code) => {
          clearTimeout(timer);
          res(code === 0);
        });
      });
      samples.push({ t, ok, ms: Date.now() - t });
      const wait = t + 50 - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  })();
  await new Promise((r) => setTimeout(r, 300));
  try {
    return await fn();
  } finally {
    await new Promise((r) => setTimeout(r, 1500));
    running = false;
    await loop;
    let start;
    const windows = [];
    for (const s of samples) {
      if (!s.ok) start ??= s.t;
      else if (start !== undefined) {
        windows.push(s.t - start);
        start = undefined;
      }
    }
    const total = windows.reduce((a, b) => a + b, 0);
    say(`  client (reading every 50 ms): ${samples.length} reads, ${windows.length ? `outage ${total} ms (${windows.join(' + ')} ms)` : 'no failed read'}${start !== undefined ? ', STILL FAILING at the end' : ''}`);
  }
}

try {
  banner('lab up: 2 nodes (sshd, NFS-Ganesha, BMC each), 1 client, 2 shared disks');
  inventory = (await baton(['lab', 'up', '--name', LAB, '--subnet', SUBNET])).trim().split('\n').pop().trim();
  const inv = readFileSync(inventory, 'utf8');
  vip = /^\s*vip: (\S+)/m.exec(inv)[1];
  netns = /lab_netns: (\S+-c1)\b/.exec(inv)?.[1] ?? `${LAB}-c1`;

  banner('start the NFS service on n1');
  await baton(['run', '--yes', '-i', inventory, path.join(root, 'playbooks/nfs-start.yml'), '-e', 'on=n1']);

  banner(`the client writes 8 MiB through the VIP ${vip}`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-demo-payload-'));
  const local = path.join(dir, 'payload');
  writeFileSync(local, randomBytes(8 << 20));
  // Written over NFSv3 (to the export's real path), read back over NFSv4: libnfs's NFSv4 write
  // fails against this Ganesha, its NFSv3 write and NFSv4 read work.
  execFileSync('ip', ['netns', 'exec', netns, 'nfs-cp', local, `nfs://${vip}${FILE.replace('/disk1/', '/srv/disk1/')}?version=3`]);
  const sha = createHash('sha256').update(readFileSync(local)).digest('hex');
  writeFileSync(local, randomBytes(4096));
  execFileSync('ip', ['netns', 'exec', netns, 'nfs-cp', local, `nfs://${vip}${PROBE.replace('/disk1/', '/srv/disk1/')}?version=3`]);
  rmSync(dir, { recursive: true, force: true });
  say(`  wrote ${FILE}, sha256 ${sha.slice(0, 16)}…, and a 4 KiB ${PROBE} the client keeps reading during each move`);

  banner('switchover n1 → n2 (planned: release on n1, take over on n2)');
  const switchover = await watched('switchover', () =>
    baton(['run', '--yes', '-i', inventory, path.join(root, 'playbooks/nfs-switchover.yml'), '-e', 'from=n1', '-e', 'to=n2']),
  );
  say(`  client reads back: ${clientRead() === sha ? 'the same bytes' : 'DIFFERENT BYTES'}`);

  banner('undo the switchover: the service goes back to n1');
  const runId = /undo:\s+baton undo (\S+)/.exec(switchover)[1];
  await watched('undo', () => baton(['undo', '--yes', runId]));
  say(`  client reads back: ${clientRead() === sha ? 'the same bytes' : 'DIFFERENT BYTES'}`);

  banner('switchover n1 → n2 again');
  await baton(['run', '--yes', '-i', inventory, path.join(root, 'playbooks/nfs-switchover.yml'), '-e', 'from=n1', '-e', 'to=n2']);

  banner('power failure of n2 (through its BMC), then failover to n1 with IPMI fencing');
  // The client reads from before the power loss: its outage runs from the failure to the
  // service answering on n1 (noticing the failure is the monitoring's job; here it is instant).
  await watched('failover', async () => {
    await baton(['lab', 'power', 'n2', 'off', '--name', LAB]);
    return baton(['run', '--yes', '-i', inventory, path.join(root, 'playbooks/nfs-failover.yml'), '-e', 'from=n2', '-e', 'to=n1']);
  });
  say(`  client reads back: ${clientRead() === sha ? 'the same bytes' : 'DIFFERENT BYTES'}`);

  banner('what baton remembers');
  await baton(['runs']);
} catch (e) {
  say(`\ndemo failed: ${e.message}`);
  process.exitCode = 1;
} finally {
  banner('lab down');
  try {
    await baton(['lab', 'down', '--name', LAB]);
  } catch (e) {
    say(`lab down failed: ${e.message}`);
    process.exitCode = 1;
  }
  rmSync(state, { recursive: true, force: true });
}
