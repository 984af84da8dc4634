/**
 * Executable inventory scripts, as Ansible's `script` inventory plugin runs them: `SCRIPT --list`
 * prints JSON groups (`{"group": {"hosts": [...], "vars": {...}, "children": [...]}}`, or a
 * plain list of hosts); `_meta.hostvars` holds every host's vars, and without it baton asks
 * `SCRIPT --host HOST` for each host. Arguments are passed as argv, never through a shell.
 */
import { spawnSync } from 'node:child_process';
import type { Problem, SourceLocation } from '../util/errors.js';
import type { InventoryData } from './data.js';

type Vars = Record<string, unknown>;
const TIMEOUT_MS = 60_000;
const isMapping = (v: unknown): v is Vars => v !== null && typeof v === 'object' && !Array.isArray(v);

function runJson(file: string, args: string[], problems: Problem[]): unknown {
  const loc: SourceLocation = { file, line: 1, col: 1 };
  const cmd = [file, ...args].join(' ');
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: TIMEOUT_MS, maxBuffer: 256 * 1024 * 1024 });
  if (r.error) {
    const timedOut = (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT';
    problems.push({ loc, message: `inventory script \`${cmd}\` ${timedOut ? `did not finish within ${TIMEOUT_MS / 1000} s` : `could not run: ${r.error.message}`}` });
    return undefined;
  }
  if (r.status !== 0) {
    problems.push({ loc, message: `inventory script \`${cmd}\` exited ${r.status ?? r.signal}: ${r.stderr.trim() || '(no stderr)'}` });
    return undefined;
  }
  try {
    return JSON.parse(r.stdout);
  } catch (e) {
    problems.push({ loc, message: `inventory script \`${cmd}\` printed something that is not JSON (${(e as Error).message}); its stderr: ${r.stderr.trim() || '(none)'}` });
    return undefined;
  }
}

export function readScriptInventory(file: string, data: InventoryData, problems: Problem[]): void {
  const loc: SourceLocation = { file, line: 1, col: 1 };
  const out = runJson(file, ['--list'], problems);
  if (out === undefined) return;
  if (!isMapping(out)) {
    problems.push({ loc, message: `inventory script \`${file} --list\` must print a JSON object of groups, got ${Array.isArray(out) ? 'a list' : typeof out}` });
    return;
  }
  const seen = new Set<string>();
  let meta: Vars | undefined;
  for (const [name, raw] of Object.entries(out)) {
    if (name === '_meta') {
      if (isMapping(raw) && 'hostvars' in raw) meta = isMapping(raw.hostvars) ? raw.hostvars : {};
      continue;
    }
    data.addGroup(name, loc);
    let g: Vars;
    if (!isMapping(raw)) g = { hosts: raw };
    else if (!('hosts' in raw) && !('vars' in raw) && !('children' in raw)) g = { hosts: [name], vars: raw };
    else g = raw;
    if ('hosts' in g) {
      if (!Array.isArray(g.hosts)) {
        problems.push({ loc, message: `inventory script ${file}: group "${name}" has hosts that are not a list` });
      } else {
        for (const h of g.hosts) {
          seen.add(String(h));
          data.addHost(String(h), name, undefined, loc);
        }
      }
    }
    if ('vars' in g) {
      if (!isMapping(g.vars)) problems.push({ loc, message: `inventory script ${file}: vars of group "${name}" are not a mapping` });
      else for (const [k, v] of Object.entries(g.vars)) data.setGroupVar(name, k, v, loc);
    }
    if (Array.isArray(g.children)) for (const c of g.children) data.addChild(name, String(c), loc);
  }
  for (const h of seen) {
    const vars = meta ? (meta[h] ?? {}) : runJson(file, ['--host', h], problems);
    if (vars === undefined) continue;
    if (!isMapping(vars)) {
      problems.push({ loc, message: `inventory script ${file}: the vars of host "${h}" are not a JSON object` });
      continue;
    }
    for (const [k, v] of Object.entries(vars)) data.setHostVar(h, k, v, loc);
  }
}
