import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ValidateFunction } from 'ajv';
import { schemasDir } from '../util/paths.js';
import { compileSchema } from './schema-check.js';

/**
 * schemas/playbook.json is written for editors: it `$ref`s every kind's argument schema so
 * yaml-language-server can complete arguments. The loader compiles a copy without those
 * refs — kinds are recognised (with did-you-mean) and their arguments checked one kind at a
 * time, compiling only the kinds a playbook uses.
 */
const PLAYBOOK_ID = 'https://baton.dev/schemas/playbook.json';

interface PlaybookSchema {
  definitions: { step: { properties: Record<string, { $ref?: string }>; additionalProperties?: boolean } };
}

let published: PlaybookSchema | undefined;
export function publishedPlaybookSchema(): PlaybookSchema {
  published ??= JSON.parse(readFileSync(path.join(schemasDir, 'playbook.json'), 'utf8')) as PlaybookSchema;
  return published;
}

const isKindRef = (p: { $ref?: string }) => typeof p.$ref === 'string' && p.$ref.startsWith('steps/');

/** Step kinds the published schema lists (kept in sync with the registry by a unit test). */
export function stepKindsInSchema(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, p] of Object.entries(publishedPlaybookSchema().definitions.step.properties)) if (isKindRef(p)) out[k] = p.$ref!;
  return out;
}

/** Keys every step may have besides its one kind key. */
export const STEP_KEYS: string[] = Object.entries(publishedPlaybookSchema().definitions.step.properties)
  .filter(([, p]) => !isKindRef(p))
  .map(([k]) => k);

let runtime: object | undefined;
/** The playbook schema the loader checks with (scripts/compile-schemas.mjs precompiles this very object). */
export function runtimePlaybookSchema(): object {
  if (!runtime) {
    const copy = structuredClone(publishedPlaybookSchema());
    const step = copy.definitions.step;
    for (const [k, p] of Object.entries(step.properties)) if (isKindRef(p)) delete step.properties[k];
    step.additionalProperties = true;
    runtime = copy;
  }
  return runtime;
}

/** A role's steps file is a step list: checked by the playbook schema's own definition. */
export const ROLE_STEPS_SCHEMA = { $id: 'baton:role-steps', $ref: `${PLAYBOOK_ID}#/definitions/stepList` };

export function playbookValidator(): ValidateFunction {
  return compileSchema('playbook', runtimePlaybookSchema());
}

export function roleStepsValidator(): ValidateFunction {
  return compileSchema('role-steps', ROLE_STEPS_SCHEMA, [runtimePlaybookSchema()]);
}

const byArgSchema = new WeakMap<object, ValidateFunction>();

/** Keyed by the schema object itself: two registries may give the same kind different schemas. */
export function stepArgsValidator(kind: string, registry: { schema(kind: string): object }): ValidateFunction {
  const schema = registry.schema(kind);
  let v = byArgSchema.get(schema);
  if (!v) {
    v = compileSchema(`step:${kind}:${byArgSchemaCount++}`, schema);
    byArgSchema.set(schema, v);
  }
  return v;
}
let byArgSchemaCount = 0;
