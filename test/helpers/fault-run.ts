/**
 * Run baton as a child process with `--json` and inject one fault at a chosen step: read its
 * events line by line (step-start / step-end tell where it is) and watch the run's journal for
 * the step's intent record, to act at the right moment.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Lab } from './lab.js';
import { bmcPid, daemonPids, linkSet, powerOff, signal, sshSessionPids } from './fault-lab.js';

export const CLI = path.resolve('dist/cli/main.js');

export type Moment = 'start' | 'intent' | 'end';

export type Fault =
  | { type: 'kill'; at: Moment }
  | { type: 'power' }
  | { type: 'ssh' }
  | { type: 'link' }
  | { type: 'stall' };

export const FAULTS: Fault[] = [
  { type: 'kill', at: 'start' },
  { type: 'kill', at: 'intent' },
  { type: 'kill', at: 'end' },
  { type: 'power' },
  { type: 'ssh' },
  { type: 'link' },
  { type: 'stall' },
];

export const faultName = (f: Fault): string => (f.type === 'kill' ? `controller SIGKILL at ${f.at}` : {
  power: 'node powered off',
  ssh: "node's SSH session killed",
  link: 'link down 2 s',
  stall: 'daemon SIGSTOPped',
}[f.type]);

/** A step instance of a run, as its events name it. */
export interface StepTarget {
  instance: string;
  host: string;
  /** Where its commands run (delegate_to), else the host. */
  on: string;
  kind: string;
  name: string;
  /** For `fence`: the node it fences (its BMC is what a stall stops). */
  fenceTarget?: string;
}

/**
 * What a stall stops, per step kind (documented in test/faults/README.md): the daemon the step
 * talks to where there is one; else the node's sshd sessions serving baton (the node hangs with
 * its connection open).
 */
export function stallTargetOf(step: StepTarget): { what: string; pids: (lab: Lab) => Promise<number[]> } {
  switch (step.kind) {
    case 'export':
    case 'unexport':
      return { what: `ganesha.nfsd on ${step.on}`, pids: (lab) => daemonPids(lab, step.on, 'ganesha.nfsd') };
    case 'restart_statd':
      return { what: `rpc.statd on ${step.on}`, pids: (lab) => daemonPids(lab, step.on, 'rpc.statd') };
    case 'fence': {
      const t = step.fenceTarget;
      if (t) return { what: `the BMC (ipmi_sim) of ${t}`, pids: async (lab) => [bmcPid(lab, t)].filter((p): p is number => p !== undefined) };
      break;
    }
  }
  return { what: `the sshd sessions on ${step.on}`, pids: (lab) => sshSessionPids(lab, step.on) };
}

export interface BatonEvent {
  type: string;
  step?: { instance: string; host: string; on?: string; kind: string; name: string };
  status?: string;
  [k: string]: unknown;
}

export interface FaultedRun {
  /** Exit code; null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The fault happened (a step that changes nothing writes no intent, for example). */
  injected: boolean;
  /** What was done, for the report. */
  note: string;
  events: BatonEvent[];
  stderr: string;
  /** The run id, from the run's journal (also when the run was killed). */
  runId?: string;
  ms: number;
  /** The harness had to kill a run that did not end by itself. */
  hung: boolean;
}

export interface RunOptions {
  lab: Lab;
  stateDir: string;
  args: string[];
  target?: StepTarget;
  fault?: Fault;
  /** How long a stall keeps the daemon stopped at most (it continues when the step ends). */
  stallMs?: number;
  /** A run still going after this is killed and reported as hung. */
  deadlineMs?: number;
  /** Act this long after the step's start or end event (the soak's moment within a step). */
  delayMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Run `baton ARGS --json` with BATON_STATE_DIR=stateDir, injecting `fault` at `target`. */
export async function runBaton(o: RunOptions): Promise<FaultedRun> {
  const t0 = Date.now();
  const runs = path.join(o.stateDir, 'runs');
  mkdirSync(runs, { recursive: true, mode: 0o700 });
  const known = new Set(readdirSync(runs));
  const child = spawn('node', [CLI, ...o.args, '--json'], {
    env: { ...process.env, BATON_STATE_DIR: o.stateDir, CI: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: BatonEvent[] = [];
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // 'close', not 'exit': the last events (the summary) may still be in the pipe when it exits.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, sig) => resolve({ code, signal: sig })));
  let done = false;
  child.on('exit', () => (done = true));

  let injected = false;
  let note = o.fault ? 'not injected: the run never reached the moment (the step was not run, or the run ended first)' : 'no fault';
  const f = o.fault;
  const tgt = o.target;
  const isTarget = (e: BatonEvent) => tgt !== undefined && e.step?.instance === tgt.instance && e.step?.host === tgt.host;
  let stepEnded: () => void = () => {};
  const stepEnd = new Promise<void>((r) => (stepEnded = r));
  const background: Promise<unknown>[] = [];

  const kill = (why: string) => {
    if (injected || done) return;
    injected = true;
    child.kill('SIGKILL');
    note = `controller SIGKILLed ${why}`;
  };

  // Which processes a stall stops or an SSH kill kills, looked up once baton has connected (its
  // first event) so that the signal lands at the step's start, not a lookup later: a fast step
  // would be over by then. Looked up again at the step, for any that came since.
  let early: Promise<number[]> | undefined;
  const victims = (): Promise<number[]> =>
    f?.type === 'stall' && tgt ? stallTargetOf(tgt).pids(o.lab) : f?.type === 'ssh' && tgt ? sshSessionPids(o.lab, tgt.on) : Promise.resolve([]);
  const both = async (first: number[]): Promise<number[]> => [...new Set([...first, ...(await victims())])];

  const atStart = async () => {
    if (!f || !tgt || injected) return;
    if (o.delayMs) await sleep(o.delayMs);
    if (injected || done) return;
    const lab = o.lab;
    if (f.type === 'kill' && f.at === 'start') return kill(`${o.delayMs ? `${o.delayMs} ms after` : 'at'} the start of ${tgt.kind} on ${tgt.host}`);
    if (f.type === 'power') {
      injected = true;
      await powerOff(lab, tgt.on);
      // Where in the run's event stream the node was fully off: a run whose steps had all ended
      // by then finished before the node died (a later failure, not a silent one).
      events.push({ type: HARNESS_POWERED_OFF });
      note = `${tgt.on} powered off at the start of ${tgt.kind}`;
    } else if (f.type === 'ssh') {
      injected = true;
      const first = signal((await early) ?? [], 'SIGKILL');
      const pids = [...new Set([...first, ...signal(await victims(), 'SIGKILL')])];
      note = `killed ${pids.length} sshd session process(es) on ${tgt.on} at the start of ${tgt.kind}`;
    } else if (f.type === 'link') {
      injected = true;
      await linkSet(lab, tgt.on, 'down');
      note = `link of ${tgt.on} down for 2 s from the start of ${tgt.kind}`;
      background.push(sleep(2000).then(() => linkSet(lab, tgt.on, 'up')));
    } else if (f.type === 'stall') {
      injected = true;
      const st = stallTargetOf(tgt);
      const first = signal((await early) ?? [], 'SIGSTOP');
      const pids = signal(await both(first), 'SIGSTOP');
      const t = Date.now();
      const limit = o.stallMs ?? 5000;
      background.push(
        Promise.race([stepEnd, exited, sleep(limit)]).then(() => {
          signal(pids, 'SIGCONT');
          const held = Date.now() - t;
          note = `stopped ${st.what} (${pids.length} pid(s)) at the start of ${tgt.kind} for ${held} ms` + (held >= limit - 20 ? ` (the step had not ended: continued after ${limit} ms)` : ' (until the step ended)');
        }),
      );
    }
  };

  const rl = createInterface({ input: child.stdout });
  rl.on('line', (line) => {
    let e: BatonEvent;
    try {
      e = JSON.parse(line) as BatonEvent;
    } catch {
      return;
    }
    events.push(e);
    if (!early && (f?.type === 'stall' || f?.type === 'ssh')) early = victims().catch(() => []);
    if (!isTarget(e)) return;
    if (e.type === 'step-start') background.push(atStart().catch((err: Error) => (note = `injecting failed: ${err.message}`)));
    if (e.type === 'step-end') {
      stepEnded();
      const why = `${o.delayMs ? `${o.delayMs} ms after` : 'at'} the end of ${tgt!.kind} on ${tgt!.host} (${e.status})`;
      if (f?.type === 'kill' && f.at === 'end') background.push((o.delayMs ? sleep(o.delayMs) : Promise.resolve()).then(() => kill(why)));
    }
  });

  // The intent moment: the journal line is on disk (fsync'd), the change not yet confirmed.
  let watcher: FSWatcher | undefined;
  let journal: string | undefined;
  const findJournal = () => {
    if (journal) return journal;
    const fresh = readdirSync(runs).filter((x) => x.endsWith('.jsonl') && !known.has(x));
    if (fresh.length) journal = path.join(runs, fresh.sort()[0]!);
    return journal;
  };
  if (f?.type === 'kill' && f.at === 'intent' && tgt) {
    const check = () => {
      const j = findJournal();
      if (!j || injected || done) return;
      const text = readFileSync(j, 'utf8');
      for (const l of text.split('\n')) {
        if (!l.includes('"t":"intent"')) continue;
        try {
          const r = JSON.parse(l) as { instance?: string; host?: string };
          if (r.instance === tgt.instance && r.host === tgt.host) return kill(`right after the intent of ${tgt.kind} on ${tgt.host} was journaled`);
        } catch {
          // a line being written
        }
      }
    };
    watcher = watch(runs, { persistent: false }, () => check());
    // fs.watch on the directory reports appends to its files on Linux; a 5 ms poll covers the rest.
    const poll = setInterval(check, 5);
    void exited.then(() => clearInterval(poll));
  }

  const deadline = o.deadlineMs ?? 120_000;
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    child.kill('SIGKILL');
  }, deadline);
  const { code, signal: sig } = await exited;
  clearTimeout(timer);
  watcher?.close();
  stepEnded();
  await Promise.all(background);
  if (hung) note += `; the run did not end within ${deadline / 1000} s and was killed`;
  const j = findJournal();
  let runId: string | undefined;
  if (j && existsSync(j)) runId = path.basename(j, '.jsonl');
  return { code, signal: sig, injected, note, events, stderr, runId, ms: Date.now() - t0, hung };
}

/** The marker runBaton puts in a run's events when a power-off fault has completed. */
export const HARNESS_POWERED_OFF = 'harness-powered-off';

/**
 * Did every step of the run end before the node was off? Then its exit 0 was true when it was
 * said, and the service broke after the run (a node failure for the next failover to handle).
 */
export function finishedBeforePowerOff(events: BatonEvent[]): boolean {
  const at = events.findIndex((e) => e.type === HARNESS_POWERED_OFF);
  if (at < 0) return false;
  const steps = events.filter((e) => e.type === 'step-start' || e.type === 'step-end');
  const after = events.slice(at + 1).filter((e) => e.type === 'step-start' || e.type === 'step-end');
  const started = steps.filter((e) => e.type === 'step-start').length;
  const ended = steps.filter((e) => e.type === 'step-end').length;
  return after.length === 0 && started > 0 && started <= ended;
}

/** The steps a run really started and did not skip, in order (from its events). */
export function activeSteps(events: BatonEvent[]): Array<StepTarget & { status: string }> {
  return events
    .filter((e) => e.type === 'step-end' && e.status !== 'skipped' && e.step)
    .map((e) => ({ instance: e.step!.instance, host: e.step!.host, on: e.step!.on ?? e.step!.host, kind: e.step!.kind, name: e.step!.name, status: String(e.status) }));
}

/** The summary line (`{"type":"summary",…}`) of a run that ended by itself. */
export function summaryOf(events: BatonEvent[]): { outcome?: string; exitCode?: number; failures?: string[] } | undefined {
  return events.find((e) => e.type === 'summary') as { outcome?: string; exitCode?: number; failures?: string[] } | undefined;
}
