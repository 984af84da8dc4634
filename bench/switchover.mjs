#!/usr/bin/env node
// A switchover of the lab's NFS service, three ways, interleaved (a slow spell of the machine
// hits all three alike), alternating the direction (n1 → n2, n2 → n1):
//   baton   `baton run playbooks/nfs-switchover.yml` (Node start included)
//   ssh     the same commands in a bash script, each over OpenSSH with a ControlMaster per node,
//           the masters opened and closed by each run (what a careful hand-written script pays)
//   direct  the same commands as one shell script per node, run inside the node (nsenter): no
//           transport at all, the floor
// The commands are baton's: release (lower the VIP and stop its announcer, remove the export,
// grace, unmount after stopping statd, detach the loop device and its claim), then takeover
// (attach and claim, mount, export, grace, the duplicate-address probe bounded at 200 ms and run
// in parallel with the storage commands, raise, announce, restart statd and notify). The scripts
// keep baton's claims and pid files, so the three ways can take turns on one lab.
// Prints median and spread of each, and baton's ratio to each. Target: baton ≤ 1.0 × ssh.
// Then the outage clients see, with `baton drill` reading a file over NFS from the lab's client
// every 50 ms: of switchovers, and of failovers after power loss (the serving node powered off
// through its BMC during the drill's warm-up; counted from the fence's confirmation, the end of
// the fence step, to the first good read). Target: median ≤ 0.5 s for both.
// Root; runs from dist/ (`npm run build` first). Usage: node bench/switchover.mjs [rounds] [drills]
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cli, labBench, load, median, root, stats } from './common.mjs';

const { labUp, labDown } = await labBench('switchover');

const rounds = Number(process.argv[2] ?? 6);
const drills = Number(process.argv[3] ?? 5);
// A name and /24 of its own, so the bench never meets a test lab.
const spec = { name: 'benchswitch', subnet: '198.18.182.0/24', nodes: 2, clients: 1, disks: 2, diskMiB: 64 };
const work = mkdtempSync(path.join(os.tmpdir(), 'baton-bench-switch-'));
const env = { ...process.env, BATON_STATE_DIR: path.join(work, 'state'), CI: 'true' };

const sq = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

/** The node-side commands of one move, as shell lines; `&` lines start in the background, `wait` joins them. */
function moveCommands(c) {
  const statdDir = '/srv/disk1/.nfs-statd';
  const garpPid = `/run/baton-garp-eth0-${c.vip}.pid`;
  const conf = '/run/ganesha/baton/export-101.conf';
  const dbus = (obj, method, ...args) => `dbus-send --system --print-reply --dest=org.ganesha.nfsd /org/ganesha/nfsd/${obj} org.ganesha.nfsd.${method} ${args.join(' ')} >/dev/null`;
  const release = [
    `p=$(cat ${garpPid} 2>/dev/null) && kill "$p" 2>/dev/null; rm -f ${garpPid}; true`,
    `ss -H -K -t state connected src ${c.vip} >/dev/null; ip addr del ${c.vip}/24 dev eth0`,
    dbus('ExportMgr', 'exportmgr.RemoveExport', 'uint16:101'),
    `rm -f ${conf}`,
    dbus('admin', 'admin.grace', `string:2:${c.vip}`),
    // statd (started by the previous takeover) keeps its state directory on the volume open.
    `pkill -x rpc.statd || true; for i in $(seq 100); do umount /srv/disk1 2>/dev/null && break; sleep 0.02; done; if mountpoint -q /srv/disk1; then echo "/srv/disk1 is still busy" >&2; exit 1; fi`,
    `for f in /run/baton/loop/*; do [ -e "$f" ] || continue; losetup -d /dev/\${f##*/} && rm -f "$f"; done`,
  ];
  const exportConf = [
    'EXPORT {',
    '    Export_Id = 101;',
    '    Path = "/srv/disk1";',
    '    Pseudo = "/disk1";',
    '    Filesystem_Id = 101.0;',
    '    Protocols = 3, 4;',
    '    SecType = sys;',
    '    Access_Type = None;',
    '    Squash = No_Root_Squash;',
    '    CLIENT { Clients = *; Access_Type = RW; Squash = No_Root_Squash; }',
    '    FSAL { Name = VFS; }',
    '}',
  ].join('\n');
  const takeover = [
    `& timeout 0.2 arping -D -c 1 -w 1 -I eth0 ${c.vip} >/dev/null; s=$?; [ $s = 124 ] || [ $s = 0 ]`,
    `d=$(losetup --nooverlap --find --show ${c.image}) && mkdir -p /run/baton/loop && printf '%s\\n' ${c.image} > /run/baton/loop/\${d#/dev/} && mount -t ext4 "$d" /srv/disk1`,
    `mkdir -p /run/ganesha/baton && printf '%s\\n' ${sq(exportConf)} > ${conf}`,
    dbus('ExportMgr', 'exportmgr.AddExport', `string:${conf}`, sq('string:EXPORT(Export_ID=101)')),
    dbus('admin', 'admin.grace', `string:5:${c.vip}`),
    'wait',
    `ip addr add ${c.vip}/24 dev eth0`,
    `setsid -f sh -c 'echo $$ > "$1"; shift; exec "$@"' garp ${garpPid} arping -q -U -c 5 -i 1 -I eth0 ${c.vip} </dev/null >/dev/null 2>&1`,
    `mkdir -p ${statdDir}/sm ${statdDir}/sm.bak; pkill -x rpc.statd || true; rpc.statd --no-notify -P ${statdDir} -n ${c.vip} && sm-notify -f -n -v ${c.vip} -P ${statdDir}`,
  ];
  return { release, takeover };
}

/** One script per node, run inside it: background lines become jobs whose status `wait` checks. */
function nodeScript(lines) {
  const out = ['set -e'];
  let jobs = 0;
  for (const l of lines) {
    if (l.startsWith('& ')) out.push(`( set +e; ${l.slice(2)} ) & job${jobs++}=$!`);
    else if (l === 'wait') for (let j = 0; j < jobs; j++) out.push(`wait $job${j} || { echo "background command ${j} failed" >&2; exit 1; }`);
    else out.push(l);
  }
  return out.join('\n');
}

/** The same lines as a bash script on the controller, one `ssh` over the node's master per line. */
function sshScript(c, from, to, cmds) {
  const opts = `-i ${sq(c.key)} -o UserKnownHostsFile=${sq(c.knownHosts)} -o StrictHostKeyChecking=yes -o BatchMode=yes`;
  const sock = (n) => path.join(work, `cm-${n.name}`);
  const lines = ['#!/bin/bash', 'set -e'];
  for (const n of [from, to]) lines.push(`ssh ${opts} -o ControlMaster=yes -o ControlPath=${sq(sock(n))} -o ControlPersist=yes -fN root@${n.address}`);
  lines.push(`trap 'for s in ${sq(sock(from))} ${sq(sock(to))}; do ssh -o ControlPath="$s" -O exit x 2>/dev/null; done' EXIT`);
  const on = (n, l) => `ssh ${opts} -o ControlPath=${sq(sock(n))} root@${n.address} ${sq(l)}`;
  for (const l of cmds.release) lines.push(on(from, l));
  let jobs = 0;
  for (const l of cmds.takeover) {
    if (l.startsWith('& ')) lines.push(`${on(to, l.slice(2))} & job${jobs++}=$!`);
    else if (l === 'wait') for (let j = 0; j < jobs; j++) lines.push(`wait $job${j}`);
    else lines.push(on(to, l));
  }
  return lines.join('\n') + '\n';
}

function nodePid(n) {
  const holder = readFileSync(path.join('/var/lib/baton-lab', spec.name, 'nodes', n.name, 'holder.pid'), 'utf8').trim();
  return readFileSync(`/proc/${holder}/task/${holder}/children`, 'utf8').trim().split(/\s+/)[0];
}

function timed(file, argv, opts = {}) {
  const t0 = performance.now();
  const r = spawnSync(file, argv, { env, encoding: 'utf8', ...opts });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`\`${file} ${argv.slice(0, 3).join(' ')} …\` exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return ms;
}

try {
  const up = await labUp(spec);
  const inv = up.inventoryPath;
  const dir = path.dirname(inv);
  const c = {
    vip: readFileSync(inv, 'utf8').match(/^\s+vip: (\S+)/m)[1],
    image: path.join(dir, 'disks', 'disk1.img'),
    key: path.join(dir, 'id_ed25519'),
    knownHosts: path.join(dir, 'known_hosts'),
  };
  const nodes = ['n1', 'n2'].map((name) => ({ name, address: readFileSync(inv, 'utf8').match(new RegExp(`${name}:\\n\\s+ansible_host: (\\S+)`))[1] }));
  execFileSync(process.execPath, [cli, 'run', '--yes', '-i', inv, path.join(root, 'playbooks/nfs-start.yml'), '-e', 'on=n1'], { env, stdio: 'ignore' });
  let at = 0; // index of the node serving now
  const times = { baton: [], ssh: [], direct: [] };
  const loads = [];
  const move = (how) => {
    const from = nodes[at];
    const to = nodes[1 - at];
    const cmds = moveCommands(c);
    let ms;
    if (how === 'baton') {
      ms = timed(process.execPath, [cli, 'run', '--yes', '-i', inv, path.join(root, 'playbooks/nfs-switchover.yml'), '-e', `from=${from.name}`, '-e', `to=${to.name}`]);
    } else if (how === 'ssh') {
      const file = path.join(work, 'move.sh');
      writeFileSync(file, sshScript(c, from, to, cmds), { mode: 0o700 });
      ms = timed('bash', [file]);
    } else {
      const t0 = performance.now();
      timed('nsenter', ['-t', nodePid(from), '-a', 'sh', '-c', nodeScript(cmds.release)]);
      timed('nsenter', ['-t', nodePid(to), '-a', 'sh', '-c', nodeScript(cmds.takeover)]);
      ms = performance.now() - t0;
    }
    at = 1 - at;
    times[how].push(ms);
  };
  // One untimed move each: caches warm, every way proven to work on this lab.
  if (rounds > 0) for (const how of ['baton', 'ssh', 'direct']) move(how);
  for (let i = 0; i < rounds; i++) {
    loads.push(load());
    for (const how of i % 2 ? ['direct', 'ssh', 'baton'] : ['baton', 'ssh', 'direct']) move(how);
  }
  for (const k of Object.keys(times)) times[k] = times[k].slice(1);
  if (rounds > 0) {
  console.log(`switchover of the lab's NFS service (2 nodes), ${rounds} interleaved rounds; load average during the rounds: ${loads.join(' | ')}`);
  console.log(`  baton run nfs-switchover.yml:        ${stats(times.baton)}`);
  console.log(`  bash over OpenSSH ControlMaster:     ${stats(times.ssh)}`);
  console.log(`  the commands run in the nodes:       ${stats(times.direct)}`);
  const b = median(times.baton);
  console.log(`  baton / OpenSSH script: ${(b / median(times.ssh)).toFixed(2)} × (target ≤ 1.0); baton / in the nodes: ${(b / median(times.direct)).toFixed(2)} ×`);
  }

  if (drills > 0) {
    // A small file on the shared disk for the client to read (the outage, not the transfer).
    timed('nsenter', ['-t', nodePid(nodes[at]), '-a', 'sh', '-c', 'head -c 4096 /dev/urandom > /srv/disk1/probe.bin && sync']);
    const probe = `nfs://${c.vip}/disk1/probe.bin?version=4`;
    const drill = async (playbook, from, to, during) => {
      // A 2 s warm-up: the drill compares every read with the bytes read before the playbook.
      const argv = [cli, 'drill', path.join(root, 'playbooks', playbook), '-i', inv, '-e', `from=${from.name}`, '-e', `to=${to.name}`, '--probe', probe, '--probe-from', 'c1', '--warmup', '2s', '--json'];
      // A failed drill still prints its report (exit 1): read it to say why.
      const pending = promisify(execFile)(process.execPath, argv, { env, maxBuffer: 64 * 1024 * 1024 }).catch((e) => e);
      await during?.();
      const { stdout = '', stderr = '' } = await pending;
      const last = stdout.trim().split('\n').at(-1) ?? '';
      const report = last.startsWith('{') ? JSON.parse(last) : undefined;
      if (report?.exitCode !== 0) {
        const runs = stdout.split('\n').filter((l) => l.includes('"failures"') || l.includes('"level":"warn"')).join('\n');
        throw new Error(`drill ${playbook} ${from.name} → ${to.name} exited ${report?.exitCode ?? '?'}: ${report?.reasons?.join('; ') ?? stderr}\n${runs}`);
      }
      at = 1 - at;
      return report;
    };
    const sw = [];
    const swLoads = [];
    for (let i = 0; i < drills; i++) {
      swLoads.push(load());
      const r = await drill('nfs-switchover.yml', nodes[at], nodes[1 - at]);
      sw.push(r.probes[0].totalOutageMs);
    }
    console.log(`client-visible outage of a switchover (baton drill, reads every 50 ms, a read > 300 ms counts as failed): ${stats(sw)}; load: ${swLoads.join(' | ')}`);
    const fo = [];
    const foLoads = [];
    const power = (node, action) => execFileSync(process.execPath, [cli, 'lab', 'power', '--name', spec.name, node.name, action], { env, stdio: 'ignore' });
    for (let i = 0; i < drills; i++) {
      foLoads.push(load());
      const dead = nodes[at];
      // Power is lost during the drill's warm-up, after its first good reads.
      const r = await drill('nfs-failover.yml', dead, nodes[1 - at], async () => {
        await new Promise((res) => setTimeout(res, 1400));
        power(dead, 'off');
      });
      const fenced = r.bars.filter((b) => b.kind === 'fence').map((b) => b.end).at(-1);
      const back = r.probes[0].samples.find((x) => x.ok && x.t >= fenced);
      if (fenced === undefined || !back) throw new Error('failover drill: no fence step or no good read after it');
      fo.push(back.t - fenced);
      power(dead, 'on');
      // Wait until the rebooted node's sshd answers before the next move involves it.
      for (let k = 0; k < 100 && spawnSync('ssh', ['-i', c.key, '-o', `UserKnownHostsFile=${c.knownHosts}`, '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=1', `root@${dead.address}`, 'true']).status !== 0; k++);
    }
    console.log(`client-visible outage of a failover after power loss, from the fence's confirmation to the first good read: ${stats(fo)}; load: ${foLoads.join(' | ')}`);
  }
} finally {
  await labDown(spec.name).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
}
