/** `--probe iscsi://…` as `baton drill` reads it: checked before anything runs (a typo is exit 2). */
import { describe, expect, it } from 'vitest';
import { parseProbeSpec } from '../../src/drill/spec.js';
import { iscsiAgentArgv } from '../../src/drill/iscsi-probe.js';

describe('iscsi:// probe URLs', () => {
  it('reads host, port, IQN, LUN and the blocks to read (8 from LBA 0 by default)', () => {
    expect(parseProbeSpec('iscsi://198.18.193.100/iqn.2026-11.test.baton:g1/1')).toEqual({
      kind: 'iscsi', label: 'iscsi://198.18.193.100/iqn.2026-11.test.baton:g1/1', host: '198.18.193.100', port: 3260, iqn: 'iqn.2026-11.test.baton:g1', lun: 1, lba: 0, blocks: 8,
    });
    expect(parseProbeSpec('iscsi://198.18.193.100:3261/iqn.2026-11.test.baton:g1/2?lba=1000&blocks=1')).toMatchObject({ port: 3261, lun: 2, lba: 1000, blocks: 1 });
  });

  it('refuses what is not a target and a LUN, naming the expected form', () => {
    const form = /use iscsi:\/\/HOST\[:PORT\]\/IQN\/LUN/;
    expect(() => parseProbeSpec('iscsi://198.18.193.100/iqn.2026-11.test.baton:g1')).toThrow(form);
    expect(() => parseProbeSpec('iscsi://198.18.193.100/disk1/1')).toThrow(/"disk1" is not a target name/);
    expect(() => parseProbeSpec('iscsi://198.18.193.100/iqn.2026-11.x:y/one')).toThrow(/the LUN must be a whole number/);
    expect(() => parseProbeSpec('iscsi://198.18.193.100/iqn.2026-11.x:y/1?blocks=0')).toThrow(/blocks must be a whole number from 1/);
    expect(() => parseProbeSpec('iscsi://198.18.193.100/iqn.2026-11.x:y/1?version=4')).toThrow(/unknown parameter "version"/);
    expect(() => parseProbeSpec('iscsu://198.18.193.100/iqn.2026-11.x:y/1')).toThrow(/use nfs:\/\/, tcp:\/\/ or iscsi:\/\//);
  });

  it('from a namespace, one helper process gets the options as one JSON argument', () => {
    const argv = iscsiAgentArgv({ host: '198.18.193.100', port: 3260, iqn: 'iqn.2026-11.x:y', lun: 1, lba: 0, blocks: 8, netns: 'baton-iscsi-c1' }, 'node');
    expect(argv.slice(0, 5)).toEqual(['ip', 'netns', 'exec', 'baton-iscsi-c1', 'node']);
    expect(argv[5]).toMatch(/iscsi-agent\.js$/);
    expect(JSON.parse(argv[6]!)).toEqual({ host: '198.18.193.100', port: 3260, iqn: 'iqn.2026-11.x:y', lun: 1, lba: 0, blocks: 8 });
  });
});
