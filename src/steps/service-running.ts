import { checkKind, listNames, type SeverityArg } from './check/common.js';
import { parseIsActive, parsePgrep, parsePidfile, pgrepArgv, pidfileArgv, systemctlIsActiveArgv, type PidfileState } from '../facts/health.js';
import { ANY_EXIT_STATUS } from '../transport/transport.js';

/**
 * `service_running`: a daemon runs on the node, by exact process name (`pgrep -x`), by pid
 * file (the pid's process exists), and/or by systemd unit (`is-active`, only where systemd
 * runs: the lab's nodes have none, so the unit is then not judged).
 */
export interface ServiceRunningArgs extends SeverityArg {
  process?: string;
  pidfile?: string;
  systemd_unit?: string;
}

export interface ServiceRunningObserved {
  pids?: number[];
  pidfile?: PidfileState;
  /** `is-active`'s word; null where there is no systemd to ask. */
  unit?: string | null;
}

export const serviceRunning = checkKind<ServiceRunningArgs, ServiceRunningObserved>({
  kind: 'service_running',

  async probe(ctx, a) {
    const seen: ServiceRunningObserved = {};
    // Independent reads: over one SSH connection they run as parallel sessions.
    await Promise.all([
      a.process &&
        ctx.run(pgrepArgv(a.process), { okCodes: [0, 1] }).then((r) => {
          seen.pids = parsePgrep(r.stdout);
        }),
      a.pidfile &&
        ctx.run(pidfileArgv(a.pidfile), { okCodes: [0, 1, 3] }).then((r) => {
          seen.pidfile = parsePidfile(r.stdout, r.code);
        }),
      a.systemd_unit &&
        ctx.run(systemctlIsActiveArgv(a.systemd_unit), { okCodes: ANY_EXIT_STATUS }).then((r) => {
          seen.unit = parseIsActive(r.stdout, r.code) ?? null;
        }),
    ]);
    return seen;
  },

  problem(seen, a) {
    const wrong: string[] = [];
    if (a.process && !seen.pids?.length) wrong.push(`no process named ${a.process}`);
    if (a.pidfile && seen.pidfile?.state === 'missing') wrong.push(`no pid in ${a.pidfile}`);
    if (a.pidfile && seen.pidfile?.state === 'stale') wrong.push(`${a.pidfile} names pid ${seen.pidfile.pid}, which is not running`);
    if (a.systemd_unit && seen.unit && seen.unit !== 'active') wrong.push(`unit ${a.systemd_unit} is ${seen.unit}`);
    return wrong.length ? wrong.join('; ') : undefined;
  },

  healthy(seen, a) {
    const parts: string[] = [];
    if (a.process) parts.push(`${a.process} running (pid ${seen.pids!.join(', ')})`);
    if (a.pidfile && seen.pidfile?.state === 'running') parts.push(`pid file ${a.pidfile}: ${seen.pidfile.pid}`);
    if (a.systemd_unit) parts.push(seen.unit ? `unit ${a.systemd_unit} active` : `no systemd to ask about ${a.systemd_unit}`);
    return parts.join('; ');
  },

  describe(a) {
    const what = [a.process, a.pidfile && `pid file ${a.pidfile}`, a.systemd_unit && `unit ${a.systemd_unit}`].filter(Boolean) as string[];
    return {
      summary: `${listNames(what)} running`,
      commands: [
        ...(a.process ? [pgrepArgv(a.process)] : []),
        ...(a.pidfile ? [pidfileArgv(a.pidfile)] : []),
        ...(a.systemd_unit ? [systemctlIsActiveArgv(a.systemd_unit)] : []),
      ],
    };
  },
});
