/**
 * The scsi-pr agent (the built dist/steps/fence/scsi-pr-agent.js, as the nodes run it) against
 * a real tgtd on loopback: two "nodes" are two initiator names, each with its own resident
 * session. What the fence provider counts on: registration through the resident session, the
 * reservation taken once even when both register at once, PREEMPT cutting the victim's writes
 * off, an unregistered node refused when it tries to preempt, and a registration outliving
 * its session (tgtd binds it to the session, not to the initiator name) removed by a fence.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addTarget, startTgtd, type Tgtd } from '../helpers/tgtd.js';
import { runRaw } from '../../src/lab/exec.js';
import { keyHex, type PrAnswer, type PrRequest } from '../../src/steps/fence/scsi-pr-protocol.js';

const AGENT = path.resolve('dist/steps/fence/scsi-pr-agent.js');
const PORT = 13271;
const T = { tid: 1, iqn: 'iqn.2026-11.test.baton:prshared', lun: 1, scsiId: '5ba7000000000071', scsiSn: 'BATON-PR-0071' };
const KA = keyHex(0xa1n);
const KB = keyHex(0xb2n);
let tgtd: Tgtd;

type Op<T> = T extends unknown ? Omit<T, 'portal' | 'iqn' | 'lun' | 'initiator'> : never;

async function agent(node: 'a' | 'b', q: Op<PrRequest>): Promise<PrAnswer> {
  const req = { portal: `127.0.0.1:${PORT}`, iqn: T.iqn, lun: T.lun, initiator: `iqn.2026-11.test.baton:pr-node-${node}`, ...q };
  const r = await runRaw([process.execPath, AGENT, JSON.stringify(req)], { timeoutMs: 20_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (!line.startsWith('{')) throw new Error(`agent for node ${node} exited ${r.code} without an answer: ${r.stderr}`);
  const a = JSON.parse(line) as PrAnswer;
  expect(r.code).toBe(a.ok ? 0 : 1);
  return a;
}
const block = (byte: number) => Buffer.alloc(512, byte).toString('base64');

beforeAll(async () => {
  if (!existsSync(AGENT)) throw new Error('dist/ is missing: build with `npm run build` before the integration tests');
  tgtd = await startTgtd({ port: PORT, controlPort: PORT });
  await addTarget(tgtd, { ...T, backing: tgtd.backingFile('pr.img', 8) });
}, 30_000);

afterAll(async () => {
  // The resident sessions are the agent's own processes: ask them to log out and end.
  for (const n of ['a', 'b'] as const) await agent(n, { op: 'logout' }).catch(() => undefined);
  await tgtd?.stop();
});

describe('scsi-pr agent against tgtd', () => {
  it('two nodes register at once: both keys listed, one registrants-only reservation, both may write', async () => {
    expect(await agent('a', { op: 'keys' })).toMatchObject({ ok: true, nexus: 'one-shot', keys: [], reservation: null });
    const [a, b] = await Promise.all([agent('a', { op: 'register', key: KA, type: 5 }), agent('b', { op: 'register', key: KB, type: 5 })]);
    expect(a).toMatchObject({ ok: true, nexus: 'resident', registered: KA });
    expect(b).toMatchObject({ ok: true, nexus: 'resident', registered: KB });
    const seen = await agent('a', { op: 'keys' });
    expect([...seen.keys!].sort()).toEqual([KA, KB]);
    expect(seen.reservation?.type).toBe(5);
    expect(await agent('b', { op: 'write', lba: 4, data: block(0xb0) })).toMatchObject({ ok: true });
  });

  it('after a PREEMPT, the victim\'s write is refused and it cannot preempt back; registering again restores it', async () => {
    expect(await agent('a', { op: 'preempt', key: KA, victim: KB, type: 5 })).toMatchObject({ ok: true, keys: [KA] });
    expect(await agent('b', { op: 'write', lba: 5, data: block(0xb1) })).toMatchObject({ ok: false, status: 'RESERVATION CONFLICT', error: 'WRITE(16) on LUN 1: RESERVATION CONFLICT' });
    const back = await agent('b', { op: 'preempt', key: KB, victim: KA, type: 5 });
    expect(back).toMatchObject({ ok: false, status: 'RESERVATION CONFLICT' });
    expect((await agent('a', { op: 'keys' })).keys).toEqual([KA]);
    // Preempting a key that is already gone changes nothing and is not an error.
    expect(await agent('a', { op: 'preempt', key: KA, victim: KB, type: 5 })).toMatchObject({ ok: true, keys: [KA] });

    expect(await agent('b', { op: 'register', key: KB, type: 5 })).toMatchObject({ ok: true });
    expect(await agent('b', { op: 'write', lba: 5, data: block(0xb2) })).toMatchObject({ ok: true });
    const read = await agent('a', { op: 'read', lba: 5, blocks: 1 });
    expect(Buffer.from(read.data!, 'base64').equals(Buffer.alloc(512, 0xb2))).toBe(true);
  });

  it('a node that logged out leaves its key listed, held by no session; a fence removes it', async () => {
    expect(await agent('b', { op: 'logout' })).toMatchObject({ ok: true });
    await new Promise((r) => setTimeout(r, 300));
    const after = await agent('b', { op: 'keys' });
    // The answer comes from a one-shot session: b has no resident one any more.
    expect(after.nexus).toBe('one-shot');
    expect([...after.keys!].sort()).toEqual([KA, KB]);
    expect((await agent('b', { op: 'write', lba: 6, data: block(0xb3) })).error).toMatch(/has no resident iSCSI session .*: it has not registered since it booted \(unfence it\)$/);
    // The fence removes the stale key with the rest of b's registrations.
    expect(await agent('a', { op: 'preempt', key: KA, victim: KB, type: 5 })).toMatchObject({ ok: true, keys: [KA] });
  });

  it('unregister drops the node\'s own key', async () => {
    expect(await agent('b', { op: 'register', key: KB, type: 5 })).toMatchObject({ ok: true });
    expect(await agent('b', { op: 'unregister' })).toMatchObject({ ok: true, registered: null, keys: [KA] });
  });
});
