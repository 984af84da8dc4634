/**
 * TCP probes: can a client open a connection to HOST:PORT. From the controller, Node's `net`
 * in this process. From a client's network namespace (`--probe-from`), Node cannot switch
 * namespaces itself, so one helper Node process runs the same loop inside the namespace
 * (`ip netns exec NS node tcp-agent.js …`) and streams its samples back as JSON lines: one
 * process for the whole drill, not one per probe.
 */
import { drillNow } from './clock.js';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { ProbeLoop, type ProbeSample, type Prober } from './probe.js';
import { inNetns } from './spec.js';
import { scriptPath } from '../util/paths.js';

/** One connect, bounded by `timeoutMs`; closed at once when it succeeds. */
export function tcpConnectOnce(host: string, port: number, timeoutMs: number): Promise<{ ok: boolean; error?: string }> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    let done = false;
    const finish = (r: { ok: boolean; error?: string }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, error: `no connection within ${timeoutMs} ms` }), timeoutMs);
    sock.once('connect', () => finish({ ok: true }));
    sock.once('error', (e: NodeJS.ErrnoException) => finish({ ok: false, error: e.code ?? e.message }));
  });
}

export interface TcpProbeOptions {
  host: string;
  port: number;
  intervalMs?: number;
  connectTimeoutMs?: number;
  /** Probe from inside this network namespace. */
  netns?: string;
}

export const TCP_AGENT = scriptPath(import.meta.url, 'drill/tcp-agent.js');

/** argv of the helper that probes from inside a namespace. */
export function tcpAgentArgv(o: TcpProbeOptions, nodeBin = process.execPath): string[] {
  return inNetns([nodeBin, TCP_AGENT, o.host, String(o.port), String(o.intervalMs ?? 50), String(o.connectTimeoutMs ?? 300)], o.netns);
}

/** Samples from the helper in a namespace; it stops when its stdin closes. */
export class AgentProbe implements Prober {
  readonly samples: ProbeSample[] = [];
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private stderr = '';
  private stopping = false;

  constructor(private readonly argv: string[]) {}

  start(): void {
    if (this.child) return;
    const child = spawn(this.argv[0]!, this.argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    let buf = '';
    child.stdout!.on('data', (b: Buffer) => {
      buf += b.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          this.samples.push(JSON.parse(line) as ProbeSample);
        } catch {
          /* not a sample: ignored */
        }
      }
    });
    child.stderr!.on('data', (b: Buffer) => (this.stderr = (this.stderr + b.toString()).slice(-2000)));
    this.exited = new Promise((res) => {
      child.on('close', (code, signal) => {
        // Ended before it was asked to: every read it did not make is one the client may have
        // failed. A failed sample now keeps the end of its samples from reading as "all well".
        if (!this.stopping) this.samples.push({ t: drillNow(), ok: false, ms: 0, probeEnded: true, error: `the probe helper ended (${signal ?? `exit ${code}`})${this.stderr.trim() ? `: ${this.stderr.trim().split('\n').pop()}` : ''}` });
        res();
      });
      child.on('error', (e) => {
        this.stderr += e.message;
        res();
      });
    });
  }

  async stop(): Promise<ProbeSample[]> {
    this.stopping = true;
    this.child?.stdin?.end();
    const killer = setTimeout(() => this.child?.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(killer);
    if (!this.samples.length && this.stderr) {
      // Nothing was recorded: say why rather than report a probe with no reads.
      this.samples.push({ t: drillNow(), ok: false, ms: 0, error: `probe helper: ${this.stderr.trim().split('\n').pop()}` });
    }
    return this.samples;
  }
}

export function tcpProbe(o: TcpProbeOptions): Prober {
  if (o.netns) return new AgentProbe(tcpAgentArgv(o));
  const timeout = o.connectTimeoutMs ?? 300;
  return new ProbeLoop(() => tcpConnectOnce(o.host, o.port, timeout), o.intervalMs ?? 50);
}
