import type { StepContext, StepKind } from './contract.js';
import { StepRefusedError } from './contract.js';
import type { AgentOptions, BmcSpec, PowerState } from '../facts/power.js';
import { agentOptionsFor, lanplusOf } from '../facts/power.js';
import { ipmiDriver } from './fence/ipmi.js';
import { fenceAgentDriver } from './fence/fence-agent.js';
import { sshDriver, DEFAULT_SELF_FENCE } from './fence/ssh.js';
import { commandDriver } from './fence/command.js';
import { scsiPrDriver, type ReservationName } from './fence/scsi-pr.js';
import { sleep } from '../util/limit.js';

/**
 * `fence`: power a peer off so it can hold nothing any more, and prove it by reading the power
 * state back (FACTS.md: a timeout is a failure, never success; already-off is success).
 *
 *   - hosts: n2                       # the survivor runs it (or delegate_to: the controller)
 *     steps:
 *       - fence: { target: n1 }       # ipmi, BMC details from n1's bmc_* inventory vars
 *
 * `action: reboot` is off, confirmed off, then on (Pacemaker's reboot). What makes it a fence
 * is the confirmed off: the node lost every resource. It has no state to converge to (the
 * node is on before and after), so it is one-shot and cannot be reverted.
 */
export type Provider = 'ipmi' | 'fence-agent' | 'ssh' | 'command' | 'scsi-pr';

export interface PowerArgs {
  /** Inventory name of the node whose power is switched. */
  target: string;
  provider?: Provider;
  /** Seconds for the power command and the confirmation together (default 60). */
  timeout?: number;
  /** Seconds between status reads while waiting for the state (default 1). */
  interval?: number;
  address?: string;
  port?: number;
  user?: string;
  password?: string;
  lanplus?: boolean;
  cipher_suite?: number;
  /** fence-agent: the agent to run (fence_ipmilan, fence_redfish, …). */
  agent?: string;
  /** fence-agent: extra `key=value` options for its stdin. */
  options?: AgentOptions;
  /** ssh: the argv that powers the target off from inside. */
  command?: string[];
  /** command provider: argvs and the regex that says the status output means off. */
  on?: string[];
  off?: string[];
  status?: string[];
  off_pattern?: string;
  /** scsi-pr: the shared LUN (defaults: inventory vars scsi_pr_portal, scsi_pr_iqn, scsi_pr_lun). */
  portal?: string;
  iqn?: string;
  lun?: number;
  reservation?: ReservationName;
  /** scsi-pr: argv that runs baton's PR agent on the nodes. */
  agent_command?: string[];
  /** scsi-pr: the LUN's kernel block device (sg_persist instead of baton's initiator). */
  device?: string;
}

export interface FenceArgs extends PowerArgs {
  action?: 'off' | 'reboot';
  /** Seconds to wait before acting: the delayed side of a two-node fence race loses it. */
  delay?: number;
}

export interface PowerObserved {
  power?: PowerState;
}

/** What a provider module gives the fence/unfence steps. */
export interface PowerDriver {
  /** For messages: "BMC 198.18.60.1:20601". */
  label: string;
  /**
   * `asking`: which question the state answers — "is it fenced?" or "is it unfenced?". The
   * same for power; scsi-pr tells them apart while no reservation is held yet (nobody is
   * fenced then, yet a node that never registered is not unfenced either).
   */
  status(ctx: StepContext, timeoutMs: number, asking?: 'fenced' | 'unfenced'): Promise<PowerState>;
  set(ctx: StepContext, state: PowerState, timeoutMs: number): Promise<void>;
  commands(action: 'on' | 'off' | 'status'): string[][];
}

export const DEFAULT_TIMEOUT_S = 60;

/** The password may come from args or inventory; both are masked (secretArgs, secret var names). */
export const POWER_SECRET_ARGS = ['password', 'options.password', 'options.passwd'];

/** BMC details: step arguments first, then the target's inventory vars (bmc_address, …). */
export function bmcFor(ctx: StepContext, a: PowerArgs): BmcSpec {
  const host = ctx.inventory.hosts.get(a.target);
  const v = host?.vars ?? {};
  const pick = (arg: unknown, name: string): unknown => (arg !== undefined && arg !== null && arg !== '' ? arg : v[name]);
  const address = pick(a.address, 'bmc_address');
  const user = pick(a.user, 'bmc_user');
  const password = pick(a.password, 'bmc_password');
  const missing = [
    address === undefined ? 'address (inventory var bmc_address)' : '',
    user === undefined ? 'user (bmc_user)' : '',
    password === undefined ? 'password (bmc_password)' : '',
  ].filter(Boolean);
  if (missing.length) {
    throw new Error(`cannot reach the BMC of ${a.target}: no ${missing.join(', ')} in the step's arguments or in ${a.target}'s inventory vars`);
  }
  const port = pick(a.port, 'bmc_port');
  const suite = pick(a.cipher_suite, 'bmc_cipher_suite');
  const lanplus = pick(a.lanplus, 'bmc_lanplus');
  return {
    address: String(address),
    port: port === undefined ? undefined : Number(port),
    user: String(user),
    password: String(password),
    lanplus: lanplusOf(lanplus),
    cipherSuite: suite === undefined ? undefined : Number(suite),
  };
}

export function driverFor(ctx: StepContext, a: PowerArgs): PowerDriver {
  if (!ctx.inventory.hosts.has(a.target)) {
    throw new Error(`target ${JSON.stringify(a.target)} is not in the inventory (${ctx.inventory.file}); name the node to power as it is listed there`);
  }
  switch (a.provider ?? 'ipmi') {
    case 'ipmi':
      return ipmiDriver(bmcFor(ctx, a));
    case 'fence-agent': {
      if (!a.agent) throw new Error('provider fence-agent needs `agent` (for example fence_ipmilan)');
      const fromBmc = hasBmc(ctx, a) ? agentOptionsFor(bmcFor(ctx, a)) : {};
      return fenceAgentDriver(a.agent, { ...fromBmc, ...(a.options ?? {}) });
    }
    case 'ssh':
      return sshDriver(a.target, a.command);
    case 'command':
      return commandDriver(a);
    case 'scsi-pr':
      return scsiPrDriver(a);
  }
}

function hasBmc(ctx: StepContext, a: PowerArgs): boolean {
  return a.address !== undefined || ctx.inventory.hosts.get(a.target)?.vars.bmc_address !== undefined;
}

/** Fencing a node through its BMC from that node would cut the branch the step sits on. */
export function refuseSelf(ctx: StepContext, a: PowerArgs, doing: string): void {
  if ((a.provider ?? 'ipmi') === 'ssh') return;
  // A node registering its own key is how SCSI unfencing is done (fence_scsi's "on" as well).
  if ((a.provider ?? 'ipmi') === 'scsi-pr' && doing !== 'fence') return;
  if (ctx.transport.host === a.target) {
    throw new StepRefusedError(
      `refusing to ${doing} ${a.target} from ${a.target} itself: the command would die with the node before it could confirm anything. Run the step on a surviving node (hosts: the peer) or on the controller (delegate_to)`,
    );
  }
}

export function budgetMs(ctx: StepContext, a: PowerArgs): number {
  const own = (a.timeout ?? DEFAULT_TIMEOUT_S) * 1000;
  return ctx.timeoutMs !== undefined ? Math.min(own, ctx.timeoutMs) : own;
}

/**
 * Switch the power and confirm it by reading the state back until it is `want` or the time
 * is up. The power command's exit code alone proves nothing (FACTS.md).
 */
export async function converge(ctx: StepContext, a: PowerArgs, driver: PowerDriver, want: PowerState, deadline: number): Promise<void> {
  const left = () => Math.max(1000, deadline - Date.now());
  await driver.set(ctx, want, left());
  const intervalMs = (a.interval ?? 1) * 1000;
  let last: PowerState | string = 'unknown';
  for (;;) {
    try {
      last = await driver.status(ctx, left(), want === 'off' ? 'fenced' : 'unfenced');
      if (last === want) return;
    } catch (e) {
      // A BMC may stall while it switches: keep asking until the deadline, then report this.
      last = `unreadable (${(e as Error).message})`;
    }
    if (Date.now() + intervalMs > deadline) break;
    await sleep(intervalMs);
  }
  const seconds = Math.round((a.timeout ?? DEFAULT_TIMEOUT_S) * 10) / 10;
  if ((a.provider ?? 'ipmi') === 'scsi-pr') {
    throw new Error(
      `${a.target} is not confirmed ${want === 'off' ? 'fenced off' : 'registered on'} the shared LUN: ${driver.label} still reads its key as ${last === 'on' ? 'registered' : last === 'off' ? 'not registered' : last} (waited up to ${seconds} s, run on ${ctx.transport.host}).` +
        (want === 'off' ? ` Treat ${a.target} as NOT fenced: it may still write to the LUN.` : ''),
    );
  }
  throw new Error(
    `${a.target} is not confirmed ${want}: ${driver.label} still reports power ${last} after the power-${want} command (waited up to ${seconds} s, run on ${ctx.transport.host}).` +
      (want === 'off' ? ` Treat ${a.target} as NOT fenced: it may still hold its resources.` : ''),
  );
}

export function describePower(verb: string, a: PowerArgs, driver: Pick<PowerDriver, 'commands'> | undefined, action: 'on' | 'off' | 'status'): { summary: string; commands: string[][] } {
  const provider = a.provider ?? 'ipmi';
  if (provider === 'scsi-pr') {
    // Nothing is powered: the node loses (or gets back) its write access to the shared LUN.
    const what = action === 'off' ? `fence ${a.target} off the shared LUN (PREEMPT of its key)` : action === 'on' ? `unfence ${a.target} on the shared LUN (it registers its key)` : `read the keys registered on the shared LUN`;
    return { summary: `${what} via scsi-pr`, commands: driver ? driver.commands(action) : [] };
  }
  const how = provider === 'fence-agent' ? `${a.agent ?? 'fence agent'} (options on stdin)` : provider === 'ssh' ? 'ssh (self-fence)' : provider;
  return { summary: `${verb} ${a.target} via ${how}`, commands: driver ? driver.commands(action) : [] };
}

/** describe() has no inventory: BMC fields it cannot know show as <bmc_address of TARGET>, read from the inventory at run time. */
export function describeDriver(a: PowerArgs): PowerDriver {
  const placeholder = (arg: unknown, name: string) => (arg !== undefined ? String(arg) : `<${name} of ${a.target}>`);
  switch (a.provider ?? 'ipmi') {
    case 'ipmi':
      return ipmiDriver({
        address: placeholder(a.address, 'bmc_address'),
        port: a.port,
        user: placeholder(a.user, 'bmc_user'),
        password: '',
        lanplus: a.lanplus,
        cipherSuite: a.cipher_suite,
      });
    case 'fence-agent':
      return fenceAgentDriver(a.agent ?? 'fence_agent', a.options ?? {});
    case 'ssh':
      return sshDriver(a.target, a.command ?? DEFAULT_SELF_FENCE);
    case 'command':
      return commandDriver(a);
    case 'scsi-pr':
      return scsiPrDriver(a);
  }
}

/**
 * A node fenced off the shared LUN is still up and answers: it is not marked down, so later
 * steps still ask it about its VIPs and mounts instead of assuming it holds nothing.
 */
function cutsPower(a: PowerArgs): boolean {
  return (a.provider ?? 'ipmi') !== 'scsi-pr';
}

export const fence: StepKind<FenceArgs, PowerObserved> = {
  kind: 'fence',
  inverse: 'unfence',
  role: 'fence',
  // Its own budget (timeout, default 60 s) plus the race delay, plus room to confirm.
  defaultTimeoutS: (a) => (a.timeout ?? DEFAULT_TIMEOUT_S) + (a.delay ?? 0) + 10,
  secretArgs: POWER_SECRET_ARGS,
  oneShot: (a) => a.action === 'reboot',
  // A self-fenced node cannot be powered back on over SSH; a reboot leaves nothing to undo.
  reversible: (a) => a.action !== 'reboot' && (a.provider ?? 'ipmi') !== 'ssh',

  async probe(ctx, a) {
    refuseSelf(ctx, a, 'fence');
    const driver = driverFor(ctx, a);
    const power = await driver.status(ctx, budgetMs(ctx, a), 'fenced');
    // A node confirmed off holds nothing and answers nothing: later peer checks need not wait on it.
    // Not for a reboot: this step powers it back on.
    if (power === 'off' && cutsPower(a) && a.action !== 'reboot') ctx.markDown(a.target, `fenced (${driver.label} reports its power off)`);
    return { power };
  },

  satisfied(seen, a) {
    return a.action !== 'reboot' && seen.power === 'off';
  },

  async apply(ctx, a) {
    refuseSelf(ctx, a, 'fence');
    const driver = driverFor(ctx, a);
    if (a.delay) {
      ctx.log(`fence ${a.target}: waiting ${a.delay} s first (delay), so the peer's fence wins a race`);
      await sleep(a.delay * 1000);
    }
    const deadline = Date.now() + budgetMs(ctx, a);
    await converge(ctx, a, driver, 'off', deadline);
    if (a.action !== 'reboot' && cutsPower(a)) ctx.markDown(a.target, `fenced (${driver.label} confirmed its power off)`);
    if (a.action === 'reboot') {
      // The fence is done once off is confirmed; a node that then fails to boot is still fenced.
      try {
        await driver.set(ctx, 'on', Math.max(1000, deadline - Date.now()));
        ctx.markDown(a.target, null);
      } catch (e) {
        ctx.log(`fence ${a.target}: powered off as asked, but powering it back on failed: ${(e as Error).message}`);
      }
    }
  },

  async revert(ctx, a, before) {
    // Only what was on goes back on; an undo after a crash may come before apply ever ran,
    // and then the node is still on and converge finds nothing to do but confirm it.
    if (before?.power !== 'on' || a.action === 'reboot') return;
    const driver = driverFor(ctx, a);
    ctx.markDown(a.target, null);
    if ((await driver.status(ctx, budgetMs(ctx, a), 'unfenced')) === 'on') return;
    await converge(ctx, a, driver, 'on', Date.now() + budgetMs(ctx, a));
  },

  describe(a) {
    const d = describePower(a.action === 'reboot' ? 'reboot (fence)' : 'fence (power off)', a, describeDriver(a), 'off');
    if (a.action === 'reboot') d.commands.push(...describeDriver(a).commands('on'));
    return d;
  },
};
