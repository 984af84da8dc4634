import { describe, expect, it } from 'vitest';
import { ConditionError, conditionRefs, evalCondition, parseCondition } from '../../src/playbook/conditions.js';

const vars = {
  role: 'primary',
  port: 2049,
  vips: ['a', 'b'],
  dry_run: 'false',
  result: { status: 'changed', rc: 0 },
  probe: { status: 'failed' },
  nothing: null,
};
const when = (e: string) => evalCondition(parseCondition(e), vars);

describe('conditions', () => {
  it('compares values', () => {
    expect(when("role == 'primary'")).toBe(true);
    expect(when("role != 'primary'")).toBe(false);
    expect(when('port > 1024 and port <= 2049')).toBe(true);
    expect(when('port >= 3000 or port < 10')).toBe(false);
    expect(when("'b' in vips")).toBe(true);
    expect(when("'c' not in vips")).toBe(true);
    expect(when("not (role == 'primary' and port == 2049)")).toBe(false);
  });

  it('equates "-e" strings with numbers', () => {
    expect(evalCondition(parseCondition('port == 2049'), { port: '2049' })).toBe(true);
  });

  it('reads bare variables as truth, "false" strings included', () => {
    expect(when('dry_run')).toBe(false);
    expect(when('vips')).toBe(true);
    expect(when('nothing')).toBe(false);
  });

  it('tests definedness and registered outcomes', () => {
    expect(when('vip is defined')).toBe(false);
    expect(when('vip is not defined')).toBe(true);
    expect(when('role is defined and vip is undefined')).toBe(true);
    expect(when('result is changed')).toBe(true);
    expect(when('result is not ok')).toBe(true);
    expect(when('result is succeeded')).toBe(true);
    expect(when('probe is failed')).toBe(true);
    expect(when('probe is skipped')).toBe(false);
  });

  it('accepts a whole-string {{ }} wrapper', () => {
    expect(when("{{ role == 'primary' }}")).toBe(true);
  });

  it('reports syntax errors with a column', () => {
    expect(() => parseCondition("role = 'x'")).toThrow(ConditionError);
    try {
      parseCondition('port >');
    } catch (e) {
      expect((e as ConditionError).message).toBe('bad condition "port >": expected a value but found the end of the expression at character 7');
      expect((e as ConditionError).col).toBe(7);
    }
    expect(() => parseCondition('x is happy')).toThrow('unknown test "happy"');
    expect(() => parseCondition('(a and b')).toThrow('expected ")"');
  });

  it('reports undefined variables and impossible comparisons when evaluated', () => {
    expect(() => when("vip == 'x'")).toThrow('undefined variable "vip" in condition (guard it with "vip is defined")');
    expect(() => when("port < 'x'")).toThrow('cannot order a number and a string');
    expect(() => when('role is changed')).toThrow('needs a registered step result');
  });

  it('lists the variables a condition needs, not those it tests for', () => {
    expect(conditionRefs(parseCondition("vip is defined and vip != '' and role in roles"))).toEqual(['role', 'roles']);
    expect(conditionRefs(parseCondition('x | default(false)'))).toEqual([]);
  });
});
