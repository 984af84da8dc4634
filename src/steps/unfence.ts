import type { StepKind } from './contract.js';
import { budgetMs, converge, DEFAULT_TIMEOUT_S, describeDriver, describePower, driverFor, POWER_SECRET_ARGS, refuseSelf, type PowerArgs, type PowerObserved } from './fence.js';

/**
 * `unfence`: power a node back on and confirm it by its power state (the inverse of `fence`).
 * Role neutral: a node that boots holds no VIP, mount or export until takeover steps give it
 * one, so powering it on takes nothing from anybody. Revert powers it off again if it was off.
 * The ssh provider cannot power anything on, so it is not offered here.
 */
export const unfence: StepKind<PowerArgs, PowerObserved> = {
  kind: 'unfence',
  inverse: 'fence',
  role: 'neutral',
  defaultTimeoutS: (a) => (a.timeout ?? DEFAULT_TIMEOUT_S) + 10,
  secretArgs: POWER_SECRET_ARGS,

  async probe(ctx, a) {
    refuseSelf(ctx, a, 'power on');
    return { power: await driverFor(ctx, a).status(ctx, budgetMs(ctx, a), 'unfenced') };
  },

  satisfied(seen) {
    return seen.power === 'on';
  },

  async apply(ctx, a) {
    refuseSelf(ctx, a, 'power on');
    await converge(ctx, a, driverFor(ctx, a), 'on', Date.now() + budgetMs(ctx, a));
    // Up again: later steps of the run must ask it what it holds, not excuse it as fenced.
    ctx.markDown(a.target, null);
  },

  async revert(ctx, a, before) {
    if (before?.power !== 'off') return;
    const driver = driverFor(ctx, a);
    if ((await driver.status(ctx, budgetMs(ctx, a), 'fenced')) === 'off') return;
    await converge(ctx, a, driver, 'off', Date.now() + budgetMs(ctx, a));
  },

  describe(a) {
    return describePower('power on (unfence)', a, describeDriver(a), 'on');
  },
};
