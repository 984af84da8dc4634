import type { Inventory } from '../inventory/model.js';
import type { Playbook } from '../playbook/model.js';
import { render } from '../playbook/template.js';
import { allHold } from '../playbook/conditions.js';
import { expandStep, instanceId } from './instances.js';
import type { PlayItem } from '../playbook/play-items.js';
import type { StepRegistry } from '../steps/registry.js';
import { becomeOf, makeStepContext, type TransportSource } from './context.js';
import { tagSelected, type TagFilter } from './tags.js';
import { stepTimeoutMs } from './timeouts.js';

/**
 * Early starts of the read-only `prepare` work of takeover steps (StepKind.prepare), so that a
 * slow check (raise_vip's 200 ms probe of the wire) runs while the steps before it do, instead of
 * on the critical path of the move.
 *
 * When: a release of resource R completes (changed, or found already done) → every later
 * takeover step of the run whose resource is R; a fence is confirmed → every later takeover step.
 * Before that moment the answer would be meaningless (the old holder still answers for the VIP).
 *
 * Which args: the step's args rendered now for its host, as the engine would render them. The
 * step gets the promise only if its args, rendered at its turn, are the same (JSON-equal); steps
 * in loops and delegated steps are not started early. The engine knows no kind: it only calls
 * `prepare` and hands the promise to `preconditions`, which judges it (and may look again).
 */
export interface PrefetchSource {
  playbook: Playbook;
  inventory: Inventory;
  extraVars: Record<string, unknown>;
  registry: StepRegistry;
  pool: TransportSource;
  filter: TagFilter;
  /** The hosts of each play, as the run selected them. */
  selected: string[][];
  /** Registered results so far, per host (later steps' args may use them). */
  registered(host: string): Record<string, unknown>;
}

interface Started {
  argsJson: string;
  promise: Promise<unknown>;
}

/** The item of a looped play a trigger came from: its own later steps are prepared for it. */
export interface PrefetchItem {
  item: PlayItem;
  /** The item's hosts. */
  hosts: string[];
  /** The item's registered results so far, per host. */
  registered(host: string): Record<string, unknown>;
}

export class Prefetches {
  private readonly started = new Map<string, Started>();
  private readonly abort = new AbortController();

  constructor(private readonly s: PrefetchSource) {}

  /** A release of `resource` completed (or, with `resource` undefined, a fence was confirmed) at this step. */
  trigger(playIndex: number, stepId: string, resource: string | undefined, from?: PrefetchItem): void {
    const { playbook, inventory, registry, selected } = this.s;
    for (let p = playIndex; p < playbook.plays.length; p++) {
      const play = playbook.plays[p]!;
      // An item prepares its own later steps; the items of another looped play check on their own turn.
      const mine = p === playIndex && from !== undefined;
      if (play.loop && !mine) continue;
      const hosts = mine ? from.hosts : (selected[p] ?? []);
      const registered = mine ? (h: string) => from.registered(h) : (h: string) => this.s.registered(h);
      const item = mine ? from.item : undefined;
      let steps = play.steps.filter((st) => tagSelected(st.tags, this.s.filter));
      if (p === playIndex) steps = steps.slice(steps.findIndex((st) => st.id === stepId) + 1);
      for (const step of steps) {
        const kind = registry.get(step.kind);
        if (!kind?.prepare || kind.role !== 'takeover' || step.loop !== undefined || step.delegateTo) continue;
        for (const hostName of hosts) {
          const host = inventory.hosts.get(hostName);
          if (!host) continue;
          let args: unknown;
          try {
            const { base } = expandStep(play, step, host, item, { inventory, extraVars: this.s.extraVars, registered: registered(hostName), playHosts: hosts });
            // Not on a host the step will skip (a group's takeover runs on its new node only): a
            // wire probe there costs the nodes' CPU that the other groups' moves are waiting for.
            if (!allHold(step.when, base)) continue;
            args = render(step.args, base);
            if (resource !== undefined && kind.resource?.(args) !== resource) continue;
          } catch {
            continue; // args that need what only the step's turn will know: it checks then
          }
          const timeoutMs = stepTimeoutMs(kind, args, step.timeoutS);
          const promise = (async () => {
            const transport = await this.s.pool.get(hostName);
            const ctx = makeStepContext({ host, transport, inventory, pool: this.s.pool, vars: {}, force: false, timeoutMs, become: becomeOf(play, step), signal: this.abort.signal, log: () => undefined });
            return kind.prepare!(ctx, args);
          })();
          // Judged (and its failure reported) only if the step takes it; never an unhandled rejection.
          promise.catch(() => undefined);
          this.started.set(keyOf(p, instanceId(step, item), hostName), { argsJson: JSON.stringify(args), promise });
        }
      }
    }
  }

  /** The early work for this step instance, if it was started with the same args; given out once. */
  take(playIndex: number, instance: string, host: string, args: unknown): Promise<unknown> | undefined {
    const key = keyOf(playIndex, instance, host);
    const s = this.started.get(key);
    if (!s) return undefined;
    this.started.delete(key);
    return s.argsJson === JSON.stringify(args) ? s.promise : undefined;
  }

  /** The run is over: stop what nobody will take. */
  stop(): void {
    this.abort.abort();
    this.started.clear();
  }
}

const keyOf = (play: number, instance: string, host: string) => `${play}\u0000${instance}\u0000${host}`;
