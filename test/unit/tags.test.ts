import { describe, expect, it } from 'vitest';
import { tagSelected } from '../../src/engine/tags.js';

describe('tag selection (Ansible rules)', () => {
  const cases: [string[], { tags?: string[]; skipTags?: string[] }, boolean][] = [
    [['raise_vip', 'network'], {}, true],
    [['raise_vip', 'network'], { tags: ['network'] }, true],
    [['raise_vip', 'network'], { tags: ['storage'] }, false],
    [['raise_vip', 'network'], { tags: ['raise_vip'] }, true],
    [['raise_vip', 'network'], { skipTags: ['network'] }, false],
    [['raise_vip', 'network'], { tags: ['network'], skipTags: ['raise_vip'] }, false],
    [['assert', 'always'], { tags: ['storage'] }, true],
    [['assert', 'always'], { skipTags: ['always'] }, false],
    [['command', 'never', 'debug'], {}, false],
    [['command', 'never', 'debug'], { tags: ['all'] }, false],
    [['command', 'never', 'debug'], { tags: ['debug'] }, true],
    [['command', 'never', 'debug'], { tags: ['never'] }, true],
    [['mount'], { tags: ['all'] }, true],
  ];
  it.each(cases)('%j with %j → %s', (tags, filter, expected) => {
    expect(tagSelected(tags, filter)).toBe(expected);
  });
});
