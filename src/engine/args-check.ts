import type { Ajv, ValidateFunction } from 'ajv';
import { loadAjv, precompiledValidator } from '../playbook/schema-check.js';
import type { StepRegistry } from '../steps/registry.js';

/**
 * Rendered arguments are checked again at run time: a template can render to a value
 * of the wrong type (a var holding "yes" where a number is wanted) that the load-time
 * check, which sees only the template, could not catch.
 *
 * The build's precompiled validators serve here too (their extra verbose fields go unused);
 * ajv is loaded only for a schema without one.
 */
let ajv: Ajv | undefined;
const compiled = new Map<string, ValidateFunction>();

export function checkRenderedArgs(registry: StepRegistry, kind: string, args: unknown): string | undefined {
  let validate = compiled.get(kind);
  if (!validate) {
    const schema = registry.schema(kind);
    validate = precompiledValidator(schema);
    if (!validate) {
      ajv ??= new (loadAjv())({ allErrors: true, strict: false, useDefaults: false });
      validate = ajv.compile(schema);
    }
    compiled.set(kind, validate);
  }
  if (validate(args)) return undefined;
  return (validate.errors ?? [])
    .map((e) => `${e.instancePath || '(arguments)'} ${e.message}${e.params && 'allowedValues' in e.params ? `: ${(e.params.allowedValues as unknown[]).join(', ')}` : ''}`)
    .join('; ');
}
