/**
 * A node's tgtd as a step sees it through ctx.run, without a tgtd: `tgtadm --op show` answers
 * with the targets and portals given, the storage view with `storage`, and every other command
 * (a change) is recorded in `ran` and answered by `onChange` (exit 0 by default).
 */
import type { ExecResult } from '../../src/transport/transport.js';

export interface FakeTgtNode {
  ctx: { transport: { host: string }; timeoutMs?: number; log: () => void; run: (argv: string[]) => Promise<ExecResult> };
  /** Every change command, as one line. */
  ran: string[];
}

export function fakeTgtNode(o: {
  host?: string;
  targets?: () => string;
  portals?: () => string[];
  storage?: string;
  timeoutMs?: number;
  onChange?: (line: string) => { code?: number; stderr?: string } | void;
}): FakeTgtNode {
  const ran: string[] = [];
  const ctx = {
    transport: { host: o.host ?? 'n1' },
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
    log: () => undefined,
    run: async (argv: string[]): Promise<ExecResult> => {
      const line = argv.join(' ');
      let stdout = '';
      let code = 0;
      let stderr = '';
      if (line.includes('--mode target --op show')) stdout = o.targets?.() ?? '';
      else if (line.includes('--mode portal --op show')) stdout = (o.portals?.() ?? []).map((p) => `Portal: ${p},1\n`).join('');
      else if (argv[0] === 'sh') stdout = o.storage ?? '\n--baton--claims\n\n--baton--mountinfo\n';
      else {
        ran.push(line);
        const r = o.onChange?.(line);
        if (r) [code, stderr] = [r.code ?? 0, r.stderr ?? ''];
      }
      return { argv, code, signal: null, stdout, stderr, timedOut: false, durationMs: 1 };
    },
  };
  return { ctx, ran };
}
