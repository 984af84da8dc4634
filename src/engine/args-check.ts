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
  coerceNumbers(registry.schema(kind), args);
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

type SchemaNode = { type?: string | string[]; properties?: Record<string, SchemaNode>; items?: SchemaNode };

/**
 * A number written as a string where the schema wants a number and takes no string becomes that
 * number, in place (the args were just rendered, a copy): `-e fence_timeout=60` is the string
 * "60", and Ansible's modules take it for their int argument; without this the failover stopped
 * at "timeout must be number".
 */
export function coerceNumbers(schema: unknown, value: unknown): void {
  const node = schema as SchemaNode | undefined;
  if (!node || value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    if (node.items) value.forEach((v, i) => (value[i] = coerced(node.items!, v)));
    return;
  }
  const obj = value as Record<string, unknown>;
  for (const [k, sub] of Object.entries(node.properties ?? {})) if (k in obj) obj[k] = coerced(sub, obj[k]);
}

function coerced(node: SchemaNode, v: unknown): unknown {
  const types = node.type === undefined ? [] : [node.type].flat();
  if (typeof v === 'string' && !types.includes('string') && (types.includes('number') || types.includes('integer')) && /^-?\d+(\.\d+)?$/.test(v.trim())) {
    const n = Number(v.trim());
    if (types.includes('number') || Number.isInteger(n)) return n;
  }
  coerceNumbers(node, v);
  return v;
}
