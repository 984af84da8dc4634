import { describe, expect, it } from 'vitest';
import { render, templateRefs, TemplateError } from '../../src/playbook/template.js';

const vars = {
  to: 'nas2',
  port: 2049,
  vips: ['198.18.0.100', '198.18.0.101'],
  item: { vip: '198.18.0.100', export: '/srv/a' },
  hostvars: { nas1: { ansible_host: '198.18.0.11' }, 'nas-2': { ansible_host: '198.18.0.12' } },
  evil: '{{ to }}',
  nothing: null,
};

describe('render', () => {
  it('interpolates dotted paths and indexes', () => {
    expect(render('{{ hostvars.nas1.ansible_host }}:{{ port }}', vars)).toBe('198.18.0.11:2049');
    expect(render("{{ vips[1] }} {{ item['export'] }}", vars)).toBe('198.18.0.101 /srv/a');
    expect(render("{{ hostvars['nas-2'].ansible_host }}", vars)).toBe('198.18.0.12');
  });

  it('keeps the type of a value that is exactly one template', () => {
    expect(render('{{ vips }}', vars)).toEqual(['198.18.0.100', '198.18.0.101']);
    expect(render('{{ port }}', vars)).toBe(2049);
    expect(render('{{ item }}', vars)).toEqual(vars.item);
    expect(render('port {{ port }}', vars)).toBe('port 2049');
  });

  it('renders deeply through lists and mappings', () => {
    expect(render({ argv: ['exportfs', '{{ item.export }}'], n: 3, on: true }, vars)).toEqual({ argv: ['exportfs', '/srv/a'], n: 3, on: true });
  });

  it('applies default to undefined values only', () => {
    expect(render("{{ missing | default('eth0') }}", vars)).toBe('eth0');
    expect(render('{{ missing | default(24) }}', vars)).toBe(24);
    expect(render('{{ missing | default(false) }}', vars)).toBe(false);
    expect(render('{{ missing | default(to) }}', vars)).toBe('nas2');
    expect(render('{{ missing.deeper | default(none) }}', vars)).toBeNull();
    expect(render("{{ port | default('x') }}", vars)).toBe(2049);
  });

  it('has a few data-only filters', () => {
    expect(render("{{ vips | join(',') }}", vars)).toBe('198.18.0.100,198.18.0.101');
    expect(render('{{ port | string }}', vars)).toBe('2049');
    expect(render("{{ '42' | int }}", vars)).toBe(42);
    expect(render('{{ vips | length }}', vars)).toBe(2);
    expect(render('{{ to | upper }}', vars)).toBe('NAS2');
  });

  it('never renders a value twice: a variable holding {{ }} stays text', () => {
    expect(render('{{ evil }}', vars)).toBe('{{ to }}');
    expect(render('x {{ evil }}', vars)).toBe('x {{ to }}');
  });

  it('names the undefined variable', () => {
    expect(() => render('{{ vip }}/24', vars)).toThrow(TemplateError);
    expect(() => render('{{ vip }}/24', vars)).toThrow('undefined variable "vip" in "{{ vip }}"');
    expect(() => render('{{ item.nope }}', vars)).toThrow('undefined variable "item.nope"');
    expect(() => render('{{ vips[5] }}', vars)).toThrow('undefined variable "vips[5]"');
  });

  it('cannot reach prototypes or call anything', () => {
    expect(() => render('{{ to.constructor }}', vars)).toThrow('undefined variable "to.constructor"');
    expect(() => render('{{ item.__proto__ }}', vars)).toThrow(TemplateError);
    expect(() => render('{{ to() }}', vars)).toThrow(TemplateError);
  });

  it('rejects malformed templates', () => {
    expect(() => render('{{ to ', vars)).toThrow('is never closed');
    expect(() => render('{{ to | shout }}', vars)).toThrow('unknown filter "shout"');
  });
});

describe('templateRefs', () => {
  it('lists root variables that must be defined, not those under default', () => {
    expect(templateRefs({ a: '{{ item.vip }}/{{ prefix }}', b: ["{{ x | default(y) }}", '{{ hostvars.n1.ansible_host }}'], c: 3 })).toEqual(['item', 'prefix', 'y', 'hostvars']);
  });
});
