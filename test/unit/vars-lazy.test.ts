import { describe, expect, it } from 'vitest';
import { varsFor } from '../../src/playbook/vars.js';
import { render } from '../../src/playbook/template.js';
import { localInventory, playbook, step } from '../helpers/model.js';

describe('vars written in playbooks and roles are templates; inventory and -e values are data', () => {
  const inventory = localInventory(['n1']);
  const host = inventory.hosts.get('n1')!;
  host.vars = { ...host.vars, iface: 'bond0', note: '{{ not_a_template_here }}' };

  it('a role default renders against the inventory when read', () => {
    const s = step('command', ['true'], { role: { name: 'vip', defaults: { vip_interface: "{{ iface | default('eth0') }}", label: '{{ vip_interface }}:0' }, params: {} } });
    const pb = playbook([s]);
    const vars = varsFor({ host, inventory, play: pb.plays[0]!, step: s });
    expect(vars.vip_interface).toBe('bond0');
    expect(vars.label).toBe('bond0:0');
    expect(render('{{ label }}', vars)).toBe('bond0:0');
  });

  it('inventory values and extra vars are never rendered', () => {
    const s = step('command', ['true']);
    const pb = playbook([s], { vars: { echo: '{{ evil }}' } });
    const vars = varsFor({ host, inventory, play: pb.plays[0]!, step: s, extraVars: { evil: '{{ iface }}' } });
    expect(vars.note).toBe('{{ not_a_template_here }}');
    // The play var is a template; the extra var it reads is data, so it is not rendered again.
    expect(vars.echo).toBe('{{ iface }}');
  });

  it('a var defined in terms of itself is an error, not a hang', () => {
    const s = step('command', ['true']);
    const pb = playbook([s], { vars: { a: '{{ b }}', b: '{{ a }}' } });
    const vars = varsFor({ host, inventory, play: pb.plays[0]!, step: s });
    expect(() => vars.a).toThrow(/in terms of itself/);
  });

  it('a lazy play var is overridden by an extra var, and a var named __proto__ is a var, not the prototype', () => {
    const s = step('command', ['true']);
    const pb = playbook([s], { vars: { port: '{{ 1000 + 49 }}' } });
    const vars = varsFor({ host, inventory, play: pb.plays[0]!, step: s, extraVars: JSON.parse('{"port": 2049, "__proto__": {"polluted": true}}') });
    expect(vars.port).toBe(2049);
    expect(Object.getPrototypeOf(vars)).toBe(Object.prototype);
    expect((vars as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getOwnPropertyDescriptor(vars, '__proto__')?.value).toEqual({ polluted: true });
  });
});
