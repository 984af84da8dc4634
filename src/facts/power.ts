/**
 * Power facts: how to ask a BMC or a fence agent whether a node is on, and how to read the
 * answer. Pure builders and parsers (unit-tested against output captured in the lab), plus
 * small readers that run them through a StepContext. Nothing here changes anything.
 */
import { ansibleBool } from '../inventory/connection.js';
import type { StepContext } from '../steps/contract.js';

export type PowerState = 'on' | 'off';

/**
 * Whether to speak IPMI v2 (lanplus), from `bmc_lanplus` or a step's `lanplus`: unset means yes;
 * otherwise Ansible's booleans (`yes`, `on`, `1`, `true`… as YAML 1.1 and INI sites write them),
 * anything else an error (or `orElse`, where a reader must not fail). Reading only `true` turned
 * `bmc_lanplus: yes` into IPMI 1.5.
 */
export function lanplusOf(value: unknown, orElse?: boolean): boolean {
  if (value === undefined || value === null || value === '') return true;
  if (orElse === undefined) return ansibleBool(value, 'bmc_lanplus');
  try {
    return ansibleBool(value, 'bmc_lanplus');
  } catch {
    return orElse;
  }
}

/** How to reach one BMC. The password never goes on a command line: see `withPasswordOnStdin`. */
export interface BmcSpec {
  address: string;
  port?: number;
  user: string;
  password: string;
  /** IPMI v2 (RMCP+); true unless told otherwise, plain IPMI 1.5 LAN sends credentials badly. */
  lanplus?: boolean;
  cipherSuite?: number;
}

/**
 * ipmitool's -E reads IPMI_PASSWORD from the environment. Over SSH, an environment variable
 * travels inside the remote command line (baton's ssh transport exports it from `sh -c`
 * positional args, visible in `ps` for the wrapper's lifetime), so the password comes on stdin
 * instead: a constant script reads one line into the variable, then execs the tool.
 */
export const PASSWORD_FROM_STDIN = 'IFS= read -r IPMI_PASSWORD || [ -n "$IPMI_PASSWORD" ] || exit 97; export IPMI_PASSWORD; exec "$@"';

export function withPasswordOnStdin(argv: string[]): string[] {
  return ['sh', '-c', PASSWORD_FROM_STDIN, 'baton-ipmi', ...argv];
}

/**
 * `ipmitool -I lanplus -H ADDR -p PORT -U USER -E [-C SUITE] -N S -R N chassis power ACTION`.
 * -N/-R bound one call: ipmitool's defaults spend ~20 s on an address that does not answer
 * (measured in the lab against a closed port), longer than a fence should wait to say so.
 */
export function ipmitoolArgv(bmc: BmcSpec, action: 'on' | 'off' | 'status', retry: { seconds: number; retries: number } = { seconds: 1, retries: 2 }): string[] {
  const argv = ['ipmitool', '-I', bmc.lanplus === false ? 'lan' : 'lanplus', '-H', bmc.address];
  if (bmc.port !== undefined) argv.push('-p', String(bmc.port));
  argv.push('-U', bmc.user, '-E');
  if (bmc.cipherSuite !== undefined && bmc.lanplus !== false) argv.push('-C', String(bmc.cipherSuite));
  argv.push('-N', String(retry.seconds), '-R', String(retry.retries), 'chassis', 'power', action);
  return argv;
}

/** `Chassis Power is on` / `Chassis Power is off` (ipmitool's `chassis power status`). */
export function parseIpmiPowerStatus(stdout: string): PowerState {
  const m = /Chassis Power is (on|off)\b/i.exec(stdout);
  if (!m) throw new Error(`unexpected answer to \`ipmitool chassis power status\`: ${JSON.stringify(stdout.trim().slice(0, 200))}`);
  return m[1]!.toLowerCase() as PowerState;
}

export type AgentOptions = Record<string, string | number | boolean>;

/**
 * The fence-agents stdin protocol: one `key=value` per line. A value with a newline would let
 * it smuggle in a second key (`action=on` after `action=off`), so it is refused.
 */
export function fenceAgentStdin(options: AgentOptions): string {
  const lines: string[] = [];
  for (const [k, raw] of Object.entries(options)) {
    if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(k)) throw new Error(`fence agent option name ${JSON.stringify(k)} is not a key the agents' stdin protocol accepts`);
    const v = typeof raw === 'boolean' ? (raw ? '1' : '0') : String(raw);
    if (/[\r\n\0]/.test(v)) throw new Error(`fence agent option ${k}: the value contains a line break, which the stdin protocol cannot carry`);
    lines.push(`${k}=${v}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Stdin keys fence_ipmilan (and the other IPMI-style agents) understand, from a BMC spec. */
export function agentOptionsFor(bmc: BmcSpec): AgentOptions {
  const o: AgentOptions = { ip: bmc.address, username: bmc.user, password: bmc.password };
  if (bmc.port !== undefined) o.ipport = bmc.port;
  if (bmc.lanplus !== false) o.lanplus = 1;
  if (bmc.cipherSuite !== undefined && bmc.lanplus !== false) o.cipher = bmc.cipherSuite;
  return o;
}

/**
 * The agents' status convention: exit 0 = on, 2 = off, anything else = could not tell
 * (fence-agents' fencing library, EC_STATUS = 2 for "off"). Undefined means failure.
 */
export function agentStatusFromExit(code: number | null): PowerState | undefined {
  if (code === 0) return 'on';
  if (code === 2) return 'off';
  return undefined;
}

/**
 * The answer to action=status, judged from the exit code and the printed line together.
 * fence-agents' fencing library prints `Status: ON` or `Status: OFF` on every successful
 * status read and exits 2 only after printing `Status: OFF`. A bare exit 2 is something else
 * (a shell wrapper's syntax error, Python's usage error, a missing interpreter's wrapper):
 * taking it as "off" would tell a failover a node is fenced when nothing was asked.
 */
export function judgeAgentStatus(code: number | null, stdout: string): { state: PowerState } | { problem: string } {
  const printed = parseAgentStatus(stdout);
  if (code === 2) {
    if (printed === 'off') return { state: 'off' };
    return { problem: `exited 2 without printing "Status: OFF"${printed ? ` (it printed "Status: ${printed.toUpperCase()}")` : ''}; fence agents print that line with every status answer, so this exit is an error of the agent or its wrapper, not "off"` };
  }
  if (code === 0) {
    if (printed === 'off') return { problem: 'exited 0 (on) but printed "Status: OFF"' };
    return { state: 'on' };
  }
  return { problem: `exited ${code}` };
}

/**
 * Warnings an agent printed on stderr, worth showing: a typo in `options:` makes fencing.py
 * say "Parse error: Ignoring unknown option 'KEY=VALUE'" and go on without it. The value is
 * left out (the typo may be in `password`); Python deprecation chatter is dropped.
 */
export function agentWarnings(stderr: string): string[] {
  const out: string[] = [];
  for (const raw of stderr.split('\n')) {
    const line = raw.trim();
    const unknown = /Ignoring unknown option '([^'=]*)/.exec(line);
    if (unknown) out.push(`unknown option "${unknown[1]}" ignored (a typo in options:?)`);
    else if (/^WARNING\b|\bWARNING:/.test(line) && !/DeprecationWarning/.test(line)) out.push(line.replace(/^WARNING:(root:)?\s*/, ''));
  }
  return [...new Set(out)];
}

/** `Status: ON` / `Status: OFF`, what fence agents print for action=status. */
export function parseAgentStatus(stdout: string): PowerState | undefined {
  const m = /^Status:\s*(ON|OFF)\b/im.exec(stdout);
  return m ? (m[1]!.toLowerCase() as PowerState) : undefined;
}

/** For the `command` provider: the status output means off when it matches the pattern. */
export function statusFromPattern(stdout: string, offPattern: string): PowerState {
  return new RegExp(offPattern, 'm').test(stdout) ? 'off' : 'on';
}

/** Where the step's commands run, for messages ("run on n2"). */
export function where(ctx: StepContext): string {
  return ctx.transport.host;
}

/** Ask a BMC for the power state; throws a readable error if it does not answer. */
export async function readIpmiPower(ctx: StepContext, bmc: BmcSpec, timeoutMs: number): Promise<PowerState> {
  const argv = ipmitoolArgv(bmc, 'status', retryFor(timeoutMs));
  const r = await ctx.run(withPasswordOnStdin(argv), { stdin: `${bmc.password}\n`, okCodes: [0, 1, 97], timeoutMs });
  if (r.code !== 0) throw new BmcError(bmc, argv, where(ctx), r.stderr || r.stdout, r.code);
  return parseIpmiPowerStatus(r.stdout);
}

/** ipmitool's -N/-R sized so that one call ends within the time given. */
export function retryFor(timeoutMs: number): { seconds: number; retries: number } {
  const s = Math.max(1, Math.floor(timeoutMs / 1000));
  // ipmitool waits -N seconds per try, retrying -R times (plus session setup messages).
  if (s >= 12) return { seconds: 2, retries: 3 };
  if (s >= 6) return { seconds: 1, retries: 2 };
  return { seconds: 1, retries: 1 };
}

/** A BMC that did not answer or refused: says where, what, and that the node was not fenced. */
export class BmcError extends Error {
  constructor(
    readonly bmc: BmcSpec,
    readonly argv: string[],
    readonly runOn: string,
    detail: string,
    code: number | null,
  ) {
    const port = bmc.port !== undefined ? `:${bmc.port}` : '';
    const why = code === 97 ? 'no password was given on stdin' : detail.trim() || `exit ${code}`;
    super(`BMC ${bmc.address}${port} (user ${bmc.user}) did not answer \`${argv.join(' ')}\` run on ${runOn}: ${why}`);
    this.name = 'BmcError';
  }
}
