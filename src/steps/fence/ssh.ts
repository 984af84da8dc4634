/**
 * ssh provider (self-fence): log in to the target itself and have it power itself off. The
 * only proof available afterwards is that it stopped answering SSH, so "off" here means "does
 * not answer": a node cut off by a network partition looks the same. Use it where a BMC is
 * absent and the node is known to be reachable, or behind a hardware watchdog.
 */
import { UnreachableError } from '../../transport/transport.js';
import { CommandFailedError, type StepContext } from '../contract.js';
import type { PowerState } from '../../facts/power.js';
import type { PowerDriver } from '../fence.js';

/**
 * sysrq `o` powers off at once, without syncing or asking an init system that may hang on the
 * storage that is failing (the kernel's sysrq-trigger works for root whatever kernel.sysrq
 * says). In the namespace lab this would power off the machine hosting the lab: lab playbooks
 * pass `command: [systemctl, poweroff, --force, --force]`, whose reboot(2) inside a child PID
 * namespace only kills that namespace's init (kernel reboot_pid_ns).
 */
export const DEFAULT_SELF_FENCE = ['sh', '-c', 'echo o > /proc/sysrq-trigger'];

/** How long one "does it still answer?" check may take. */
const ANSWER_TIMEOUT_MS = 3000;
/**
 * After the power-off was sent, how long the node must stay silent (no answer, or no connection)
 * before that reads as off: one slow answer is also what an overloaded node gives.
 */
const SILENCE_MS = 5000;

/**
 * The nodes this process (one run) sent the power-off to, and since when each has been silent:
 * the fence's own checks after its apply use a driver of their own, and must know it was sent.
 * A later run knows nothing of it, and reads a node it cannot reach as unknown.
 */
const sentTo = new Map<string, { silentSince?: number }>();

export function sshDriver(target: string, command: string[] = DEFAULT_SELF_FENCE): PowerDriver {
  /** This driver sent the power-off: a connection that stops answering is what it did. */
  const wasSent = () => sentTo.has(target);
  /** Silence after the power-off: off once it has lasted SILENCE_MS, else not yet known. */
  const silent = (why: string): PowerState => {
    const s = sentTo.get(target)!;
    s.silentSince ??= Date.now();
    const lasted = Date.now() - s.silentSince;
    if (lasted >= SILENCE_MS) return 'off';
    throw new Error(`${target} ${why} since the power-off was sent ${Math.round(lasted / 100) / 10} s ago; off once that lasts ${SILENCE_MS / 1000} s`);
  };
  return {
    label: `ssh to ${target}`,
    async status(ctx: StepContext, timeoutMs: number): Promise<PowerState> {
      const limit = Math.min(timeoutMs, ANSWER_TIMEOUT_MS);
      try {
        // Before the power-off, a connection still being made is no answer either way: its own
        // verdict (connected, or unreachable within the connect timeout) is waited for. After it,
        // a connect that does not finish in time is the node gone.
        const sent = wasSent();
        const t = sent ? await withTimeout(ctx.transportFor(target), limit) : await ctx.transportFor(target);
        if (!t) return silent('has not taken a connection');
        const r = await t.exec(['true'], { timeoutMs: limit });
        // Any exit status is an answer: the node is up (`sudo -n` refusing `true` included).
        if (!r.timedOut) {
          if (sent) sentTo.get(target)!.silentSince = undefined;
          return 'on';
        }
        // A connection that was open and no longer answers: after the power-off this driver sent,
        // the node went down (a machine that loses power sends no FIN), once that silence lasts.
        // Before it, the node may only be slow: never read as off, or the fence would be
        // "confirmed" without acting.
        if (sent) return silent('has not answered');
        throw new Error(`${target} took the SSH connection but \`true\` did not finish within ${limit / 1000} s: it may be up but overloaded, so it cannot be read as off; fence it through its BMC (provider ipmi or fence-agent)`);
      } catch (e) {
        if (!(e instanceof UnreachableError)) throw e;
        // Before the power-off, a node baton cannot reach is not known to be off: a node cut off by
        // a network partition looks the same, and may still serve. Unknown is not free.
        if (!wasSent()) {
          throw new Error(
            `${target} cannot be reached over SSH (${e.message}), so the ssh provider cannot power it off or know that it is off: a node cut off by a partition looks the same and may still serve. Fence it through its BMC (provider ipmi or fence-agent)`,
          );
        }
        return silent('cannot be reached');
      }
    },
    async set(ctx: StepContext, state: PowerState, timeoutMs: number): Promise<void> {
      if (state === 'on') {
        throw new Error(`the ssh provider cannot power ${target} on (a node that is off has no SSH to log in to): use provider ipmi, fence-agent or command`);
      }
      try {
        const t = await ctx.transportFor(target);
        sentTo.set(target, {});
        // The command takes the connection down with the node: losing it is the expected outcome.
        const r = await t.exec(command, { timeoutMs: Math.min(timeoutMs, 10_000) });
        if (r.code !== 0 && r.code !== null) {
          throw new CommandFailedError(target, r);
        }
      } catch (e) {
        if (e instanceof UnreachableError) return;
        throw e;
      }
    },
    commands: () => [command],
  };
}

/** Resolves undefined when p does not settle in time (a connect to a hung node). */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => resolve(undefined), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}
