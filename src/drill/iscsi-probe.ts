/**
 * iSCSI probes for `baton drill --probe iscsi://HOST[:PORT]/IQN/LUN[?lba=N&blocks=M]`: a client
 * that stays logged in and reads the same blocks every interval, with baton's own initiator, as
 * an application on an iSCSI disk would. A failed or slow read drops the session and the next
 * attempt logs in again (what an initiator does after its connection breaks); every sample
 * carries the sha256 of the bytes read, so the drill checks they never change across a move.
 * From a client's network namespace (`--probe-from`) the same loop runs in a helper process
 * (iscsi-agent.js), as for TCP probes.
 */
import { createHash } from 'node:crypto';
import { iscsiLogin, type IscsiSession } from '../net/iscsi/session.js';
import { ProbeLoop, type ProbeAttempt, type Prober } from './probe.js';
import { inNetns } from './spec.js';
import { AgentProbe } from './tcp-probe.js';
import { scriptPath } from '../util/paths.js';

export interface IscsiProbeOptions {
  host: string;
  port: number;
  iqn: string;
  lun: number;
  lba: number;
  blocks: number;
  intervalMs?: number;
  /** Bound on one attempt (a login, when needed, and the read). */
  readTimeoutMs?: number;
  netns?: string;
}

export const DRILL_INITIATOR = 'iqn.2026-11.dev.baton:drill';

/** One logged-in reader; `attempt` reads the blocks, logging in first when it has no session. */
export class IscsiBlockReader {
  private session: IscsiSession | undefined;
  private blockSize = 0;
  /** Bumped when an attempt is given up: a login it started that ends later is closed, not kept. */
  private generation = 0;

  constructor(private readonly o: IscsiProbeOptions) {}

  readonly attempt: ProbeAttempt = async () => {
    const timeout = this.o.readTimeoutMs ?? 300;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no read within ${timeout} ms`)), timeout);
    });
    try {
      const bytes = await Promise.race([this.readNow(timeout), bound]);
      return { ok: true, sha256: createHash('sha256').update(bytes).digest('hex') };
    } catch (e) {
      this.drop();
      return { ok: false, error: (e as Error).message };
    } finally {
      clearTimeout(timer);
    }
  };

  private async readNow(timeoutMs: number): Promise<Buffer> {
    if (!this.session) {
      const gen = this.generation;
      const s = await iscsiLogin({ host: this.o.host, port: this.o.port, initiatorName: DRILL_INITIATOR, targetName: this.o.iqn, timeoutMs });
      let blockSize: number;
      try {
        blockSize = (await s.readCapacity(this.o.lun)).blockSize;
      } catch (e) {
        s.close();
        throw e;
      }
      // The attempt that logged in was given up meanwhile (its bound ran out): this session is
      // nobody's. Kept, it stayed logged in on the target for the rest of the drill.
      if (gen !== this.generation || this.session) {
        s.close();
        throw new Error('login finished after its attempt was given up');
      }
      // Only a session whose block size is known is used: a read built with block size 0 is wrong.
      this.session = s;
      this.blockSize = blockSize;
    }
    return this.session.read(this.o.lun, this.o.lba, this.o.blocks, this.blockSize);
  }

  private drop(): void {
    this.generation++;
    this.session?.close();
    this.session = undefined;
  }

  /** Log out politely at the end of the drill (bounded by the session's own timeout). */
  async close(): Promise<void> {
    const s = this.session;
    this.generation++;
    this.session = undefined;
    if (s) await s.logout().catch(() => s.close());
  }
}

class IscsiLoop extends ProbeLoop {
  constructor(private readonly reader: IscsiBlockReader, intervalMs: number) {
    super(reader.attempt, intervalMs);
  }
  override async stop() {
    const samples = await super.stop();
    await this.reader.close();
    return samples;
  }
}

export const ISCSI_AGENT = scriptPath(import.meta.url, 'drill/iscsi-agent.js');

/** argv of the helper that probes from inside a namespace (one JSON argument: the options). */
export function iscsiAgentArgv(o: IscsiProbeOptions, nodeBin = process.execPath): string[] {
  const { netns, ...rest } = o;
  return inNetns([nodeBin, ISCSI_AGENT, JSON.stringify(rest)], netns);
}

export function iscsiProbe(o: IscsiProbeOptions): Prober {
  if (o.netns) return new AgentProbe(iscsiAgentArgv(o));
  return new IscsiLoop(new IscsiBlockReader(o), o.intervalMs ?? 50);
}

/** For the agent: the loop without a namespace. */
export function iscsiLoop(o: IscsiProbeOptions): ProbeLoop {
  return new IscsiLoop(new IscsiBlockReader(o), o.intervalMs ?? 50);
}
