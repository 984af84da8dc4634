/**
 * The scsi-pr fence provider without a target: keys, the judgement of "fenced", the agent's
 * argv and answers, the PR OUT bytes it relies on, and the driver's decisions against a stub
 * of the node-side agent (what a node's agent answers is what the lab test gets from tgtd).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { PrOut, PrType, prOutCdb, prOutParams } from '../../src/net/iscsi/scsi.js';
import { fence } from '../../src/steps/fence.js';
import { unfence } from '../../src/steps/unfence.js';
import type { StepContext } from '../../src/steps/contract.js';
import type { ExecResult } from '../../src/transport/transport.js';
import { agentArgv, initiatorOf, judge, parseAnswer, prKeyOf, scsiPrDriver } from '../../src/steps/fence/scsi-pr.js';
import { keyHex, residentSocket, type PrAnswer, type PrRequest } from '../../src/steps/fence/scsi-pr-protocol.js';
import { SG_RESERVATION_CONFLICT, parseReadKeys, parseReadReservation, sgPersistAsk } from '../../src/steps/fence/sg-persist.js';

const LUN = { portal: '198.18.201.250:3260', iqn: 'iqn.2026-11.dev.baton.lab:t.san', lun: 1 };
const K1 = keyHex(prKeyOf('n1'));
const K2 = keyHex(prKeyOf('n2'));

describe('reservation keys and initiator names', () => {
  it('derives a stable, non-zero key per node name, and takes scsi_pr_key when given', () => {
    expect(prKeyOf('n1')).toBe(prKeyOf('n1'));
    expect(prKeyOf('n1')).not.toBe(prKeyOf('n2'));
    expect(prKeyOf('n1')).not.toBe(0n);
    expect(prKeyOf('n1', { scsi_pr_key: '0xa1' })).toBe(0xa1n);
    expect(prKeyOf('n1', { scsi_pr_key: 'B2' })).toBe(0xb2n);
    expect(keyHex(0xa1n)).toBe('0x00000000000000a1');
  });

  it('refuses a zero or malformed scsi_pr_key, naming the node', () => {
    expect(() => prKeyOf('n3', { scsi_pr_key: '0' })).toThrow('scsi_pr_key of n3 is "0": it must be 1 to 16 hex digits and not zero (a zero key means "unregister" to SPC)');
    expect(() => prKeyOf('n3', { scsi_pr_key: 'xyz' })).toThrow(/^scsi_pr_key of n3 is "xyz"/);
    expect(() => prKeyOf('n3', { scsi_pr_key: '0x11223344556677889' })).toThrow(/17|16 hex digits/);
  });

  it('names a node\'s initiator after it unless iscsi_initiator_name says otherwise', () => {
    expect(initiatorOf('n1')).toBe('iqn.2026-11.dev.baton:n1');
    expect(initiatorOf('n1', { iscsi_initiator_name: 'iqn.1993-08.org.debian:01:abc' })).toBe('iqn.1993-08.org.debian:01:abc');
  });

  it('gives each node\'s resident session its own abstract socket name', () => {
    const a = residentSocket({ ...LUN, initiator: initiatorOf('n1') });
    expect(a.startsWith('\0baton-scsi-pr-')).toBe(true);
    expect(residentSocket({ ...LUN, initiator: initiatorOf('n2') })).not.toBe(a);
  });
});

describe('the PR OUT commands the provider sends (SPC-4 6.16)', () => {
  it('REGISTER AND IGNORE EXISTING KEY registers with the service action key; a zero one unregisters', () => {
    expect(prOutCdb(PrOut.REGISTER_AND_IGNORE, 0).toString('hex')).toBe('5f060000000000001800');
    expect(prOutParams(0n, 0xb2n).subarray(8, 16).toString('hex')).toBe('00000000000000b2');
    expect(prOutParams(0n, 0n).equals(Buffer.alloc(24))).toBe(true);
  });

  it('RESERVE and PREEMPT carry the registrants-only type in byte 2', () => {
    expect(prOutCdb(PrOut.RESERVE, PrType.WE_REGISTRANTS_ONLY).toString('hex')).toBe('5f010500000000001800');
    expect(prOutCdb(PrOut.PREEMPT, PrType.EA_REGISTRANTS_ONLY).toString('hex')).toBe('5f040600000000001800');
  });
});

describe('judging a node fenced or unfenced from READ KEYS', () => {
  const held = { key: K1, type: PrType.WE_REGISTRANTS_ONLY };
  it('without a reservation nobody is fenced, yet a node that never registered is not unfenced', () => {
    expect(judge(K2, { keys: [], reservation: null }, 'fenced')).toBe('on');
    expect(judge(K2, { keys: [], reservation: null }, 'unfenced')).toBe('off');
  });

  it('with a reservation, a missing key is fenced and a present one is not', () => {
    expect(judge(K2, { keys: [K1], reservation: held }, 'fenced')).toBe('off');
    expect(judge(K2, { keys: [K1, K2], reservation: held }, 'fenced')).toBe('on');
  });

  it('a key no node of the inventory registers blocks "fenced": the node may write under it', () => {
    // Before: K2 absent read "off" (no PREEMPT sent) while the node still wrote under a key
    // fence_scsi or multipath had registered for it.
    const foreign = '0xabcdef0000000001';
    expect(() => judge(K2, { keys: [K1, foreign], reservation: held }, 'fenced', undefined, [K1, K2])).toThrow(/0xabcdef0000000001 is, which no node of the inventory registers/);
    expect(judge(K2, { keys: [K1], reservation: held }, 'fenced', undefined, [K1, K2])).toBe('off');
  });

  it('a key left by a session that is gone (the node rebooted) does not count once the node says so', () => {
    const rebooted: PrAnswer = { ok: true, nexus: 'one-shot', keys: [K1, K2], reservation: held };
    const live: PrAnswer = { ok: true, nexus: 'resident', registered: K2, keys: [K1, K2], reservation: held };
    expect(judge(K2, { keys: [K1, K2], reservation: held }, 'unfenced', rebooted)).toBe('off');
    expect(judge(K2, { keys: [K1, K2], reservation: held }, 'unfenced', live)).toBe('on');
  });
});

describe('the agent\'s argv and answers', () => {
  it('passes the request as one JSON argument (data, never shell code)', () => {
    const q: PrRequest = { ...LUN, initiator: 'iqn.x:n1', op: 'preempt', key: K1, victim: "$(reboot)'; rm -rf /", type: 5 };
    const argv = agentArgv({ target: 'n2', agent_command: ['node', '/opt/baton/dist/steps/fence/scsi-pr-agent.js'] }, q);
    expect(argv.slice(0, 2)).toEqual(['node', '/opt/baton/dist/steps/fence/scsi-pr-agent.js']);
    expect(argv).toHaveLength(3);
    expect(JSON.parse(argv[2]!)).toEqual(q);
  });

  it('an agent that printed no answer is an error naming the host, the command and its stderr', () => {
    expect(() => parseAnswer('n2', ['node', '/x/scsi-pr-agent.js', '{}'], { code: 127, stdout: '', stderr: 'sh: node: not found' })).toThrow(
      'scsi-pr agent on n2 (`node /x/scsi-pr-agent.js …`) exited 127 without an answer: sh: node: not found',
    );
    expect(parseAnswer('n2', ['a'], { code: 1, stdout: 'noise\n{"ok":false,"error":"x"}\n', stderr: '' })).toEqual({ ok: false, error: 'x' });
  });
});

/** A StepContext whose commands go to `agent` (the host they run on, the request), nothing else. */
function stubContext(here: string, agent: (host: string, q: PrRequest) => PrAnswer, reachable = true): { ctx: StepContext; asked: Array<[string, string]> } {
  const asked: Array<[string, string]> = [];
  const vars = { scsi_pr_portal: LUN.portal, scsi_pr_iqn: LUN.iqn, scsi_pr_lun: 1 };
  const answer = (host: string, argv: string[]) => {
    const q = JSON.parse(argv[argv.length - 1]!) as PrRequest;
    asked.push([host, q.op]);
    return { code: 0, stdout: `${JSON.stringify(agent(host, q))}\n`, stderr: '', durationMs: 1 };
  };
  const ctx = {
    transport: { host: here },
    inventory: { file: 'inv.yml', hosts: new Map(['n1', 'n2'].map((n) => [n, { name: n, vars, groups: ['all'] }])) },
    run: async (argv: string[]) => answer(here, argv),
    transportFor: async (name: string) => {
      if (!reachable) throw new Error(`${name} unreachable`);
      return { host: name, exec: async (argv: string[]) => answer(name, argv) };
    },
    markDown: () => undefined,
    log: () => undefined,
  } as unknown as StepContext;
  return { ctx, asked };
}

describe('the scsi-pr driver against a stubbed agent', () => {
  const held = { key: K1, type: 5 };
  const a = { target: 'n2', provider: 'scsi-pr' as const };

  it('fence: the survivor preempts the target\'s key with its own, from its own session', async () => {
    const { ctx, asked } = stubContext('n1', (_host, q) => {
      if (q.op === 'preempt') {
        expect(q).toMatchObject({ key: K1, victim: K2, type: 5, initiator: 'iqn.2026-11.dev.baton:n1', portal: LUN.portal, iqn: LUN.iqn, lun: 1 });
        return { ok: true, keys: [K1], reservation: held };
      }
      return { ok: true, keys: [K1], reservation: held };
    });
    await scsiPrDriver(a).set(ctx, 'off', 5000);
    expect(asked).toEqual([['n1', 'preempt']]);
    expect(await scsiPrDriver(a).status(ctx, 5000, 'fenced')).toBe('off');
  });

  it('fence from a node whose own key is gone fails, saying it must not fence others', async () => {
    const { ctx } = stubContext('n1', () => ({ ok: false, error: 'PERSISTENT RESERVE OUT (PREEMPT) on LUN 1: RESERVATION CONFLICT', status: 'RESERVATION CONFLICT' }));
    await expect(scsiPrDriver(a).set(ctx, 'off', 5000)).rejects.toThrow(
      `n1 could not preempt n2's key ${K2}: n1's own key ${K1} is not registered through its session, so the target refuses its PREEMPT. A node that is itself fenced (or never unfenced) must not fence others`,
    );
  });

  it('unfence: the target registers its own key, on the target', async () => {
    const { ctx, asked } = stubContext('n1', (host, q) => {
      if (q.op === 'register') expect({ host, key: q.key, initiator: q.initiator }).toEqual({ host: 'n2', key: K2, initiator: 'iqn.2026-11.dev.baton:n2' });
      return { ok: true, nexus: 'resident', registered: K2, keys: [K1, K2], reservation: held };
    });
    await scsiPrDriver(a).set(ctx, 'on', 5000);
    expect(asked).toEqual([['n2', 'register']]);
    expect(await scsiPrDriver(a).status(ctx, 5000, 'unfenced')).toBe('on');
  });

  it('a target that cannot be asked, whose key is still registered, counts as not fenced', async () => {
    const { ctx } = stubContext('n1', () => ({ ok: true, nexus: 'one-shot', keys: [K1, K2], reservation: held }), false);
    expect(await scsiPrDriver(a).status(ctx, 5000, 'fenced')).toBe('on');
  });

  it('a READ KEYS that fails is an error naming the LUN and the host, never a state', async () => {
    const { ctx } = stubContext('n1', () => ({ ok: false, error: 'iSCSI portal 198.18.201.250:3260: ECONNREFUSED' }));
    await expect(scsiPrDriver(a).status(ctx, 5000)).rejects.toThrow(`SCSI PR on ${LUN.iqn} LUN 1 at ${LUN.portal}: READ KEYS from n1 failed: iSCSI portal 198.18.201.250:3260: ECONNREFUSED`);
  });

  it('without the LUN in args or inventory, it says which vars to set', async () => {
    const { ctx } = stubContext('n1', () => ({ ok: true }));
    (ctx.inventory.hosts.get('n1') as { vars: Record<string, unknown> }).vars = {};
    await expect(scsiPrDriver(a).status(ctx, 5000)).rejects.toThrow('provider scsi-pr: no portal (inventory var scsi_pr_portal), iqn (scsi_pr_iqn) for the shared LUN');
  });
});

describe('fence/unfence describe and schema with provider scsi-pr', () => {
  it('the plan says what happens to the LUN and shows the agent\'s argv', () => {
    const f = fence.describe({ target: 'n2', provider: 'scsi-pr' });
    expect(f.summary).toBe('fence n2 off the shared LUN (PREEMPT of its key) via scsi-pr');
    expect(JSON.parse(f.commands[0]!.at(-1)!)).toMatchObject({ op: 'preempt', victim: '<key of n2>' });
    expect(unfence.describe({ target: 'n2', provider: 'scsi-pr' }).summary).toBe('unfence n2 on the shared LUN (it registers its key) via scsi-pr');
  });

  it('the fence schema takes the LUN and the reservation type, and nothing else', () => {
    const ajv = new Ajv({ strict: false });
    const validate = ajv.compile(JSON.parse(readFileSync(path.resolve('schemas/steps/fence.json'), 'utf8')));
    expect(validate({ target: 'n2', provider: 'scsi-pr', portal: '198.18.201.250', iqn: LUN.iqn, lun: 1, reservation: 'exclusive-access-registrants-only' })).toBe(true);
    expect(validate({ target: 'n2', provider: 'scsi-pr', reservation: 'write-exclusive' })).toBe(false);
    expect(validate({ target: 'n2', provider: 'scsi-pr', lun: -1 })).toBe(false);
  });
});

/**
 * sg_persist on nodes with a kernel device: its output as sg3_utils prints it (constructed
 * from its format, no kernel initiator here) and the commands run in order, against a stub.
 */
describe('scsi-pr over sg_persist (a node with a kernel device)', () => {
  const KEYS_TWO = '  PR generation=0x4, 2 registered reservation keys follow:\n    0xa1\n    0xb2\n';
  const KEYS_NONE = '  PR generation=0x0, there are NO registered reservation keys\n';
  const RES_HELD = '  PR generation=0x4, Reservation follows:\n    Key=0xa1\n    scope: LU_SCOPE,  type: Write Exclusive, registrants only\n';
  const RES_NONE = '  PR generation=0x4, there is NO reservation held\n';
  const q = { ...LUN, initiator: 'iqn.x:n1' };
  const res = (code: number, stdout: string, stderr: string): ExecResult => ({ argv: [], code, signal: null, stdout, stderr, timedOut: false, durationMs: 1 });

  it('reads keys and the reservation from its output; refuses output it cannot read', () => {
    expect(parseReadKeys(KEYS_TWO)).toEqual([keyHex(0xa1n), keyHex(0xb2n)]);
    expect(parseReadKeys(KEYS_NONE)).toEqual([]);
    expect(parseReadReservation(RES_HELD)).toEqual({ key: keyHex(0xa1n), type: 5 });
    expect(parseReadReservation(RES_HELD.replace('Write Exclusive, registrants only', 'Exclusive Access, registrants only'))).toEqual({ key: keyHex(0xa1n), type: 6 });
    expect(parseReadReservation(RES_NONE)).toBeNull();
    expect(() => parseReadKeys('sg_persist: error opening file: /dev/sdz: No such file or directory')).toThrow(/cannot read: sg_persist: error opening file/);
  });

  it('fence: reserve if none is held, PREEMPT the victim only when it is listed', async () => {
    const ran: string[] = [];
    let keys = KEYS_TWO;
    const exec = async (argv: string[]) => {
      ran.push(argv.slice(1, argv.length - 2).join(' '));
      const out = argv.includes('--read-keys') ? keys : argv.includes('--read-reservation') ? RES_HELD : '';
      if (argv.includes('--preempt')) keys = '  PR generation=0x5, 1 registered reservation key follows:\n    0xa1\n';
      return res(0, out, '');
    };
    const a = await sgPersistAsk(exec, { ...q, op: 'preempt', key: keyHex(0xa1n), victim: keyHex(0xb2n), type: 5 }, '/dev/sdb');
    expect(a).toMatchObject({ ok: true, nexus: 'kernel', keys: [keyHex(0xa1n)] });
    expect(ran).toEqual([
      '--in --read-reservation',
      '--in --read-keys',
      `--out --preempt --param-rk=${keyHex(0xa1n)} --param-sark=${keyHex(0xb2n)} --prout-type=5`,
      '--in --read-keys',
      '--in --read-reservation',
    ]);
  });

  it('a RESERVATION CONFLICT (exit 24) is reported as such, with the command', async () => {
    const exec = async (argv: string[]) =>
      argv.includes('--preempt')
        ? res(SG_RESERVATION_CONFLICT, '', 'persistent reserve out: Reservation conflict')
        : res(0, argv.includes('--read-keys') ? KEYS_TWO : RES_HELD, '');
    const a = await sgPersistAsk(exec, { ...q, op: 'preempt', key: keyHex(0xb2n), victim: keyHex(0xa1n), type: 5 }, '/dev/sdb');
    expect(a.ok).toBe(false);
    expect(a.status).toBe('RESERVATION CONFLICT');
    expect(a.error).toContain('sg_persist --out --preempt');
  });

  it('register: a reservation another node took in between is fine', async () => {
    let reserved = false;
    const exec = async (argv: string[]) => {
      if (argv.includes('--reserve')) {
        reserved = true; // the peer won the race
        return res(SG_RESERVATION_CONFLICT, '', 'Reservation conflict');
      }
      const out = argv.includes('--read-keys') ? KEYS_TWO : argv.includes('--read-reservation') ? (reserved ? RES_HELD : RES_NONE) : '';
      return res(0, out, '');
    };
    const a = await sgPersistAsk(exec, { ...q, op: 'register', key: keyHex(0xb2n), type: 5 }, '/dev/sdb');
    expect(a).toMatchObject({ ok: true, registered: keyHex(0xb2n), reservation: { key: keyHex(0xa1n), type: 5 } });
  });

  it('with `device`, the plan shows the sg_persist commands', () => {
    const d = fence.describe({ target: 'n2', provider: 'scsi-pr', device: '/dev/disk/by-id/wwn-0x6ba7' });
    expect(d.commands.at(-1)).toEqual(['sg_persist', '--out', '--preempt', '--param-rk=<key of the node running the step>', '--param-sark=<key of n2>', '--prout-type=5', '--no-inquiry', '/dev/disk/by-id/wwn-0x6ba7']);
  });
});
