import { readFileSync } from 'node:fs';
import path from 'node:path';
import { schemasDir } from '../util/paths.js';
import type { StepKind } from './contract.js';
import { catalog, type CatalogEntry, type StepRole } from './catalog.js';

/**
 * The engine and the validator look kinds up here and nowhere else. Adding a kind means:
 * a module in src/steps/, a schema in schemas/steps/KIND.json, one line in steps/index.ts.
 */
export class StepRegistry {
  private readonly byKind = new Map<string, StepKind>();
  private readonly roles = new Map<string, StepRole>();
  private readonly loaders = new Map<string, CatalogEntry['load']>();
  private readonly schemas = new Map<string, object>();

  /**
   * Kinds given as implementations are ready at once; catalog entries are loaded by
   * `ensureLoaded()` (execute and revert call it) — validation needs only names and roles.
   * `schemaFor` replaces reading schemas/steps/KIND.json (tests register kinds with inline schemas).
   */
  constructor(
    kinds: StepKind[],
    private readonly schemaFor?: (kind: string) => object,
    lazy: CatalogEntry[] = [],
  ) {
    for (const k of kinds) {
      if (this.roles.has(k.kind)) throw new Error(`step kind ${k.kind} registered twice`);
      this.byKind.set(k.kind, k);
      this.roles.set(k.kind, k.role ?? 'neutral');
    }
    for (const e of lazy) {
      if (this.roles.has(e.kind)) throw new Error(`step kind ${e.kind} registered twice`);
      this.roles.set(e.kind, e.role);
      this.loaders.set(e.kind, e.load);
    }
  }

  /** Load the code of these kinds (default: all) so that get() can hand them out. */
  async ensureLoaded(kinds: Iterable<string> = this.loaders.keys()): Promise<void> {
    await Promise.all(
      [...kinds].map(async (kind) => {
        const load = this.loaders.get(kind);
        if (!load || this.byKind.has(kind)) return;
        this.byKind.set(kind, await load());
        this.loaders.delete(kind);
      }),
    );
  }

  /** The kind's implementation; undefined for an unknown kind. */
  get(kind: string): StepKind | undefined {
    const k = this.byKind.get(kind);
    if (!k && this.loaders.has(kind)) throw new Error(`step kind ${kind} is not loaded yet: call registry.ensureLoaded() first`);
    return k;
  }

  /** What the kind does to the world, for the fence-order check; known without loading it. */
  roleOf(kind: string): StepRole | undefined {
    return this.roles.get(kind);
  }

  has(kind: string): boolean {
    return this.roles.has(kind);
  }

  kinds(): string[] {
    return [...this.roles.keys()].sort();
  }

  /** The kind's JSON Schema (schemas/steps/KIND.json), read on first use. */
  schema(kind: string): object {
    let s = this.schemas.get(kind);
    if (!s && this.schemaFor) {
      s = this.schemaFor(kind);
      this.schemas.set(kind, s);
    }
    if (!s) {
      s = JSON.parse(readFileSync(path.join(schemasDir, 'steps', `${kind}.json`), 'utf8')) as object;
      this.schemas.set(kind, s);
    }
    return s;
  }
}

let shared: StepRegistry | undefined;
export function defaultRegistry(): StepRegistry {
  shared ??= new StepRegistry([], undefined, catalog);
  return shared;
}
