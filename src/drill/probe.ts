import { drillNow } from './clock.js';
import { spawn } from 'node:child_process';

/**
 * What a client sees: a read of a file through the service every `intervalMs`, each read's
 * outcome recorded with its time. Reads run one after another (a hung read delays the next,
 * as it would for an application), each bounded by `readTimeoutMs`.
 */
export interface ProbeSample {
  /** ms since the epoch when the read started. */
  t: number;
  ok: boolean;
  /** How long the read took. */
  ms: number;
  /** sha256 of the bytes read, when ok. */
  sha256?: string;
  error?: string;
  /** Not a read: the probe itself ended here, before it was stopped (its helper died); nothing after it was read. */
  probeEnded?: true;
}

export interface ReadProbeOptions {
  /** argv that prints the file on stdout (e.g. `ip netns exec C nfs-cat nfs://VIP/…`). */
  argv: string[];
  intervalMs?: number;
  readTimeoutMs?: number;
}

function readOnce(argv: string[], timeoutMs: number): Promise<{ ok: boolean; sha256?: string; error?: string }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    const hash = import('node:crypto').then((c) => c.createHash('sha256'));
    const chunks: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => chunks.push(b));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ ok: false, error: e.message });
    });
    child.on('close', async (code, signal) => {
      clearTimeout(timer);
      if (code === 0) {
        const h = await hash;
        for (const c of chunks) h.update(c);
        resolve({ ok: true, sha256: h.digest('hex') });
      } else resolve({ ok: false, error: signal ? `killed after ${timeoutMs} ms` : err.trim().split('\n').pop() || `exit ${code}` });
    });
  });
}

/** One attempt at the service: did it answer, and (for reads) with which bytes. */
export type ProbeAttempt = () => Promise<{ ok: boolean; sha256?: string; error?: string }>;

/** Something that probes a service until stopped, keeping every sample. */
export interface Prober {
  readonly samples: ProbeSample[];
  start(): void;
  stop(): Promise<ProbeSample[]>;
}

/**
 * Attempts one after another, started every `intervalMs` (a slow attempt delays the next rather
 * than overlapping it: a client application waits for its read too).
 */
export class ProbeLoop implements Prober {
  readonly samples: ProbeSample[] = [];
  private running = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly attempt: ProbeAttempt,
    private readonly intervalMs = 50,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const t = drillNow();
        const r = await this.attempt();
        this.samples.push({ t, ms: drillNow() - t, ...r });
        const wait = t + this.intervalMs - drillNow();
        if (wait > 0 && this.running) await new Promise((res) => setTimeout(res, wait));
      }
    })();
  }

  async stop(): Promise<ProbeSample[]> {
    this.running = false;
    await this.loop;
    return this.samples;
  }
}

/** Reads a file with a command (`nfs-cat`) every `intervalMs`; a read past `readTimeoutMs` is killed and counts as failed. */
export class ReadProbe extends ProbeLoop {
  constructor(o: ReadProbeOptions) {
    const timeout = o.readTimeoutMs ?? 2000;
    super(() => readOnce(o.argv, timeout), o.intervalMs ?? 50);
  }
}
