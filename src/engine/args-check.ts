import { Ajv, type ValidateFunction } from 'ajv';
import type { StepRegistry } from '../steps/registry.js';

/**
 * Rendered arguments are checked again at run time: a template can render to a value
 * of the wrong type (a var holding "yes" where a number is wanted) that the load-time
 * check, which sees only the template, could not catch.
 */
const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: false });
const compiled = new Map<string, ValidateFunction>();

export function checkRenderedArgs(registry: StepRegistry, kind: string, args: unknown): string | undefined {
  let validate = compiled.get(kind);
  if (!validate) {
    validate = ajv.compile(registry.schema(kind));
    compiled.set(kind, validate);
  }
  if (validate(args)) return undefined;
  return (validate.errors ?? [])
    .map((e) => `${e.instancePath || '(arguments)'} ${e.message}${e.params && 'allowedValues' in e.params ? `: ${(e.params.allowedValues as unknown[]).join(', ')}` : ''}`)
    .join('; ');
}
