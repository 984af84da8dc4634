import { readFileSync } from 'node:fs';
import path from 'node:path';
import { schemasDir } from '../util/paths.js';
import type { StepKind } from './contract.js';
import { allKinds } from './index.js';

/**
 * The engine and the validator look kinds up here and nowhere else. Adding a kind means:
 * a module in src/steps/, a schema in schemas/steps/KIND.json, one line in steps/index.ts.
 */
export class StepRegistry {
  private readonly byKind = new Map<string, StepKind>();
  private readonly schemas = new Map<string, object>();

  /** `schemaFor` replaces reading schemas/steps/KIND.json (tests register kinds with inline schemas). */
  constructor(
    kinds: StepKind[],
    private readonly schemaFor?: (kind: string) => object,
  ) {
    for (const k of kinds) {
      if (this.byKind.has(k.kind)) throw new Error(`step kind ${k.kind} registered twice`);
      this.byKind.set(k.kind, k);
    }
  }

  get(kind: string): StepKind | undefined {
    return this.byKind.get(kind);
  }

  has(kind: string): boolean {
    return this.byKind.has(kind);
  }

  kinds(): string[] {
    return [...this.byKind.keys()].sort();
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
  shared ??= new StepRegistry(allKinds);
  return shared;
}
