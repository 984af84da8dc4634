import type { Problem, SourceLocation } from '../util/errors.js';

/**
 * A playbook as loaded and validated, before any template is rendered.
 * Roles are already expanded into their steps; each step keeps the role's vars in its own scope.
 */
export interface Playbook {
  file: string;
  plays: Play[];
  /** Things the loader did that a reader may want to know (shown with -v): keys ignored, steps left out. */
  notices?: Problem[];
}

export type OnFailure = 'rollback' | 'stop';

/** What a failed item of a looped play does to the others (see PlayLoop). */
export type OnItemFailure = 'rollback_item' | 'rollback_all';

/**
 * A play run once per item of a list (`loop:` on the play): items run at the same time, up to
 * `concurrency`, each its own transaction (own changes, own rollback, own lock when `lock:`
 * names the item). The steps of one item run in order, as in any play.
 */
export interface PlayLoop {
  /** A list, or a template that renders to one (from play vars, the inventory's `all` vars and -e). */
  items: unknown;
  /** Name of the item in templates (default `item`). */
  var: string;
  /** How an item is named in output and the journal: a template (default: the item's `name`, else the item). */
  label?: string;
  /** Items in flight at once (default DEFAULT_ITEM_CONCURRENCY). */
  concurrency?: number;
  onItemFailure: OnItemFailure;
}

/**
 * `placement:` as written (templates unrendered): a play that stands instead of `loop:` and gets
 * its items, one per service group to move, from what runs where at run time (engine/placement.ts).
 * Exactly one of move, evacuate, failover, start.
 */
export interface PlacementSpec {
  /** A group to switch over, to `to` or its next preferred node. */
  move?: string;
  to?: string;
  /** A node every group of which moves to its next preferred other node. */
  evacuate?: string;
  /** A failed node every group of which is taken over on its first preferred surviving node. */
  failover?: string;
  /** A stopped group to start, on `on` or its first preferred node that can be reached. */
  start?: string;
  on?: string;
  /** A group to stop wherever it runs. */
  stop?: string;
}

/** A placement request once rendered. */
export type PlacementRequest =
  | { kind: 'move'; group: string; to?: string }
  | { kind: 'evacuate'; node: string }
  | { kind: 'failover'; node: string }
  | { kind: 'start'; group: string; on?: string }
  | { kind: 'stop'; group: string };

export interface Play {
  name: string;
  /** Host pattern (`web`, `a:b`, `a:!b`, `a:&b`), may hold templates: `"{{ to }}"`. */
  hosts: string;
  vars: Record<string, unknown>;
  steps: StepSpec[];
  /** Parallel hosts at most (default 10, Ansible's default). */
  forks?: number;
  /** Hosts per batch; each batch runs all steps before the next starts. */
  serial?: number;
  /** Name of the lock the run takes; default: the playbook's path. */
  lock?: string;
  /** What happens when a step fails (default rollback). */
  onFailure?: OnFailure;
  /** Run the play once per item, items concurrently (see PlayLoop). */
  loop?: PlayLoop;
  /**
   * The item list is the moves this asks for, resolved at run time (loop.items is empty until
   * then; engine/placement.ts replaces both). Expanding an unresolved play is a bug.
   */
  placement?: PlacementSpec;
  /** Takeover steps require a fence or release of the peer before them in this play. */
  requiresFence?: boolean;
  /** `become`/`become_user` as written (Ansible's privilege escalation), passed through untouched. */
  become?: boolean;
  becomeUser?: string;
  tags: string[];
  loc: SourceLocation;
}

export interface StepSpec {
  /** Stable id within the playbook, e.g. `p0.s3` or `p1.s0.vip.s2`: how the journal and undo refer to it. */
  id: string;
  /** Human name; defaults to the kind's describe() summary. */
  name?: string;
  kind: string;
  /** Arguments as written, templates unrendered. */
  args: unknown;
  /** Explicit tags, inherited play/role tags, and the kind itself. */
  tags: string[];
  /** Conditions, all must hold (Ansible-style list = and). See engine/conditions.ts. */
  when: string[];
  /** A list, or a template that renders to one. */
  loop?: unknown;
  loopVar: string;
  delegateTo?: string;
  runOnce: boolean;
  timeoutS?: number;
  retries: number;
  delayS: number;
  ignoreErrors: boolean;
  /** Name under which the step's outcome is kept, for `when: NAME is changed`. */
  register?: string;
  /** The role this step came from, with its default vars (lowest precedence) and its params (above play vars). */
  role?: { name: string; defaults: Record<string, unknown>; params: Record<string, unknown> };
  /** `become`/`become_user` as written on the step, passed through untouched. */
  become?: boolean;
  becomeUser?: string;
  loc: SourceLocation;
}
