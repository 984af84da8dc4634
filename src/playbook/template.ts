import {
  evaluate,
  ExprEvalError,
  ExprSyntaxError,
  parseValueExpr,
  requiredRefs,
  stringify,
  UndefinedVariableError,
  type Expr,
} from './expr.js';

/**
 * `{{ var }}` templates: variable paths, `[0]` / `['key']`, and a few filters
 * (`default`, `string`, `int`, `bool`, `join`, `lower`, `upper`, `length`, `first`, `last`).
 * No code evaluation. A rendered value is data and is never rendered again, so a variable
 * whose value contains `{{` cannot inject anything.
 */
export class TemplateError extends Error {
  constructor(
    message: string,
    /** The undefined variable, when that is the problem. */
    readonly variable?: string,
  ) {
    super(message);
    this.name = 'TemplateError';
  }
}

type Segment = { text: string } | { expr: Expr; source: string };

const cache = new Map<string, Segment[]>();

/** Split a string into text and `{{ }}` parts; throws TemplateError on a malformed one. */
export function parseTemplate(s: string): Segment[] {
  const hit = cache.get(s);
  if (hit) return hit;
  const out: Segment[] = [];
  let i = 0;
  while (i < s.length) {
    const open = s.indexOf('{{', i);
    if (open < 0) {
      out.push({ text: s.slice(i) });
      break;
    }
    if (open > i) out.push({ text: s.slice(i, open) });
    const close = s.indexOf('}}', open + 2);
    if (close < 0) throw new TemplateError(`"{{" at character ${open + 1} of ${JSON.stringify(s)} is never closed with "}}"`);
    const source = s.slice(open + 2, close);
    if (!source.trim()) throw new TemplateError(`empty "{{ }}" in ${JSON.stringify(s)}`);
    try {
      out.push({ expr: parseValueExpr(source), source: source.trim() });
    } catch (err) {
      if (err instanceof ExprSyntaxError) {
        throw new TemplateError(`bad template "{{${source}}}": ${err.reason} (templates hold a variable and filters, e.g. "{{ item.vip | default('none') }}")`);
      }
      throw err;
    }
    i = close + 2;
  }
  if (cache.size > 10_000) cache.clear();
  cache.set(s, out);
  return out;
}

export function isTemplate(s: string): boolean {
  return s.includes('{{');
}

/**
 * Render every string in `value` (deeply through lists and mappings). A string that is
 * exactly one `{{ x }}` becomes x itself, keeping its type; otherwise parts are joined as text.
 */
export function render(value: unknown, vars: Record<string, unknown>): unknown {
  if (typeof value === 'string') return renderString(value, vars);
  if (Array.isArray(value)) return value.map((v) => render(v, vars));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = render(v, vars);
    return out;
  }
  return value;
}

function renderString(s: string, vars: Record<string, unknown>): unknown {
  if (!isTemplate(s)) return s;
  const segs = parseTemplate(s);
  if (segs.length === 1 && 'expr' in segs[0]!) {
    const v = evalSegment(segs[0], vars);
    // One expression can double too (`{{ [a, a] | join('') }}`).
    if (typeof v === 'string' && v.length > MAX_RENDERED_CHARS) throw tooLong();
    return v;
  }
  let out = '';
  for (const seg of segs) {
    out += 'expr' in seg ? stringify(evalSegment(seg, vars)) : seg.text;
    // Templates that read templates double at each level: 23 levels of "{{ a }}{{ a }}" in an
    // 806-byte inventory took 3 GB. No value baton passes on is near this size.
    if (out.length > MAX_RENDERED_CHARS) throw tooLong();
  }
  return out;
}

const tooLong = () => new TemplateError(`the value is over ${MAX_RENDERED_CHARS} characters after templating (templates that repeat other templates?)`);

/** The longest text one template may render to. */
export const MAX_RENDERED_CHARS = 1 << 20;

function evalSegment(seg: { expr: Expr; source: string }, vars: Record<string, unknown>): unknown {
  try {
    return evaluate(seg.expr, vars);
  } catch (err) {
    if (err instanceof UndefinedVariableError) {
      throw new TemplateError(`undefined variable "${err.variable}" in "{{ ${seg.source} }}"`, err.variable);
    }
    if (err instanceof ExprEvalError) throw new TemplateError(`in "{{ ${seg.source} }}": ${err.message}`);
    throw err;
  }
}

/** Root variables the templates in `value` need (not those under `| default(...)`), in order of appearance. */
export function templateRefs(value: unknown): string[] {
  const out = new Set<string>();
  const visit = (v: unknown): void => {
    if (typeof v === 'string') {
      if (!isTemplate(v)) return;
      for (const seg of parseTemplate(v)) if ('expr' in seg) for (const r of requiredRefs(seg.expr)) out.add(r);
    } else if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === 'object') Object.values(v).forEach(visit);
  };
  visit(value);
  return [...out];
}
