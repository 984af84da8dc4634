import path from 'node:path';
import yaml from 'js-yaml';
import { ValidationError, type Problem } from '../util/errors.js';
import { readSource } from './read-source.js';
import { parseYaml, YamlSyntaxError } from './yaml-source.js';

/**
 * `-e` values, merged left to right (a later `-e` wins), as ansible-playbook reads them:
 *   -e from=nas1 to=nas2     key=value pairs, space separated; values stay strings
 *   -e '{"vips": ["a"]}'     a JSON (or YAML flow) mapping, types kept
 *   -e @vars.yml             a YAML or JSON file holding a mapping
 */
export function parseExtraVars(list: string[], cwd: string = process.cwd()): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const problems: Problem[] = [];
  list.forEach((arg, i) => {
    const where = { file: `-e #${i + 1}`, line: 1, col: 1 };
    const fail = (message: string) => problems.push({ loc: where, message });
    const trimmed = arg.trim();
    if (trimmed.startsWith('@')) {
      const file = path.resolve(cwd, trimmed.slice(1));
      let data: unknown;
      try {
        data = parseYaml(readSource(file, `extra vars from ${trimmed}`), file).value;
      } catch (err) {
        if (err instanceof ValidationError) return void problems.push(...err.problems);
        if (err instanceof YamlSyntaxError) return void problems.push(err.problem);
        return fail(`cannot read extra vars from ${trimmed}: ${(err as Error).message}`);
      }
      if (data === null || data === undefined) return;
      if (typeof data !== 'object' || Array.isArray(data)) return fail(`extra vars file ${trimmed} must hold a mapping of names to values`);
      Object.assign(out, data);
      return;
    }
    if (trimmed.startsWith('{')) {
      let data: unknown;
      try {
        data = yaml.load(trimmed);
      } catch (err) {
        return fail(`extra vars ${JSON.stringify(arg)} look like JSON but do not parse: ${(err as Error).message.split('\n')[0]}`);
      }
      if (!data || typeof data !== 'object' || Array.isArray(data)) return fail(`extra vars ${JSON.stringify(arg)} must be a mapping`);
      Object.assign(out, data);
      return;
    }
    for (const pair of splitPairs(trimmed)) {
      const eq = pair.indexOf('=');
      if (eq <= 0) return fail(notKeyValue(arg, pair));
      const key = pair.slice(0, eq);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) return fail(`extra var name ${JSON.stringify(key)} is not a valid variable name`);
      out[key] = pair.slice(eq + 1);
    }
  });
  if (problems.length) throw new ValidationError(problems);
  return out;
}

/**
 * Why `pair` is not key=value, and how to write what was probably meant. Two ways to get here:
 * a value with spaces split by our own key=value parsing (`-e 'x=a b'`), or a word the shell
 * split off or ended the command at (`-e x=; touch f` runs `touch f` as a second command).
 */
function notKeyValue(arg: string, pair: string): string {
  const head = `extra var ${JSON.stringify(pair)} is not key=value (nor JSON, nor @file)`;
  const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(arg);
  if (m && /\s/.test(m[2]!.trim())) {
    const [, key, value] = m;
    const json = JSON.stringify({ [key!]: value!.trim() });
    // The double-quoted form only when the shell would pass the value through unchanged.
    const inner = /['"$`\\!]/.test(value!) ? '' : ` -e "${key}='${value!.trim()}'" or`;
    return (
      `${head}: -e ${JSON.stringify(arg)} was read as space-separated key=value pairs, as ansible-playbook does. ` +
      `For a value with spaces or shell characters, quote the value inside the argument:${inner} -e '${json.replace(/'/g, `'\\''`)}'`
    );
  }
  return (
    `${head}: write -e NAME=VALUE; a value with spaces or shell characters is quoted inside the argument, ` +
    `-e "x='a b; c'", or given as JSON, -e '{"x": "a b; c"}'`
  );
}

/** Split on spaces outside quotes; quotes around a value are removed (`msg="a b"`). */
function splitPairs(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | null = null;
  for (const c of s) {
    if (quote) {
      if (c === quote) quote = null;
      else cur += c;
    } else if (c === '"' || c === "'") quote = c;
    else if (/\s/.test(c)) {
      if (cur) out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (cur) out.push(cur);
  return out;
}
