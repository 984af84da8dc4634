/**
 * The one expression language of playbooks, shared by `{{ }}` templates and `when:`.
 * A parser and an evaluator over data only: nothing here can call a function, reach a
 * prototype or run code, whatever a playbook or a variable's value contains.
 */

export type Expr =
  | { type: 'lit'; value: unknown }
  | { type: 'path'; root: string; segments: Array<string | number>; pos: number }
  | { type: 'list'; items: Expr[] }
  | { type: 'filter'; input: Expr; name: string; args: Expr[]; pos: number }
  | { type: 'not'; operand: Expr }
  | { type: 'and' | 'or'; left: Expr; right: Expr }
  | { type: 'cmp'; op: CmpOp; left: Expr; right: Expr }
  | { type: 'test'; operand: Expr; test: TestName; negated: boolean; pos: number };

export type CmpOp = '==' | '!=' | '<' | '>' | '<=' | '>=' | 'in' | 'not in';
export const TESTS = ['defined', 'undefined', 'changed', 'ok', 'failed', 'skipped', 'succeeded', 'none'] as const;
export type TestName = (typeof TESTS)[number];
export const FILTERS = ['default', 'd', 'string', 'int', 'bool', 'join', 'lower', 'upper', 'length', 'first', 'last'] as const;

/** The expression is not well formed; `pos` is the 0-based offset in the expression text. */
export class ExprSyntaxError extends Error {
  constructor(
    readonly reason: string,
    readonly pos: number,
  ) {
    super(reason);
    this.name = 'ExprSyntaxError';
  }
}

/** A variable the expression needs is not defined. */
export class UndefinedVariableError extends Error {
  constructor(readonly variable: string) {
    super(`undefined variable "${variable}"`);
    this.name = 'UndefinedVariableError';
  }
}

/** The expression is well formed but cannot be computed from these values (e.g. `"a" < 3`). */
export class ExprEvalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExprEvalError';
  }
}

// ---------------------------------------------------------------- lexer

type Tok =
  | { t: 'num'; v: number; pos: number }
  | { t: 'str'; v: string; pos: number }
  | { t: 'id'; v: string; pos: number }
  | { t: 'op'; v: string; pos: number }
  | { t: 'end'; pos: number };

const OPS = ['==', '!=', '<=', '>=', '<', '>', '(', ')', '[', ']', '.', ',', '|'];

function lex(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      let v = '';
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\\' && j + 1 < src.length) {
          const e = src[j + 1]!;
          v += e === 'n' ? '\n' : e === 't' ? '\t' : e;
          j += 2;
        } else v += src[j++];
      }
      if (j >= src.length) throw new ExprSyntaxError(`unterminated string starting with ${c}`, i);
      out.push({ t: 'str', v, pos: i });
      i = j + 1;
      continue;
    }
    const num = /^-?\d+(\.\d+)?/.exec(src.slice(i));
    if (num && (c !== '-' || !isValueEnd(out[out.length - 1]))) {
      out.push({ t: 'num', v: Number(num[0]), pos: i });
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(src.slice(i));
    if (id) {
      // A '-' ends an identifier unless a letter/digit follows, so `a-b` reads as a name (Ansible
      // host and var names often hold '-') but `a - 1` never appears: there is no arithmetic.
      const name = id[0].replace(/-+$/, '');
      out.push({ t: 'id', v: name, pos: i });
      i += name.length;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (op) {
      out.push({ t: 'op', v: op, pos: i });
      i += op.length;
      continue;
    }
    throw new ExprSyntaxError(`unexpected character "${c}"`, i);
  }
  out.push({ t: 'end', pos: src.length });
  return out;
}

function isValueEnd(tok: Tok | undefined): boolean {
  return !!tok && (tok.t === 'num' || tok.t === 'str' || tok.t === 'id' || (tok.t === 'op' && (tok.v === ')' || tok.v === ']')));
}

// ---------------------------------------------------------------- parser

const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'is']);
const LITERAL_WORDS: Record<string, unknown> = {
  true: true,
  True: true,
  false: false,
  False: false,
  none: null,
  None: null,
  null: null,
};

/**
 * Bounds on one expression, so that a pathological one (`((((…` or `not not not …` thousands
 * deep) is refused at its place rather than overflow the stack, here or when it is evaluated.
 * Ansible's own expressions in playbooks are a few dozen tokens, nested a few levels.
 */
const MAX_NESTING = 64;
const MAX_TOKENS = 4096;

class Parser {
  private i = 0;
  private depth = 0;
  constructor(private readonly toks: Tok[]) {
    if (toks.length > MAX_TOKENS) throw new ExprSyntaxError(`the expression has ${toks.length} tokens; at most ${MAX_TOKENS} are read`, toks[MAX_TOKENS]!.pos);
  }

  /** One level deeper (a parenthesis, a list, a `not`), refused past MAX_NESTING. */
  private nested<T>(at: number, f: () => T): T {
    if (++this.depth > MAX_NESTING) throw new ExprSyntaxError(`the expression nests deeper than ${MAX_NESTING} levels`, at);
    try {
      return f();
    } finally {
      this.depth--;
    }
  }

  private peek(): Tok {
    return this.toks[this.i]!;
  }
  private next(): Tok {
    return this.toks[this.i++]!;
  }
  private isOp(v: string): boolean {
    const t = this.peek();
    return t.t === 'op' && t.v === v;
  }
  private isWord(v: string): boolean {
    const t = this.peek();
    return t.t === 'id' && t.v === v;
  }
  private expectOp(v: string): void {
    const t = this.peek();
    if (!(t.t === 'op' && t.v === v)) throw new ExprSyntaxError(`expected "${v}" but found ${describe(t)}`, t.pos);
    this.i++;
  }

  end(): void {
    const t = this.peek();
    if (t.t !== 'end') throw new ExprSyntaxError(`unexpected ${describe(t)}`, t.pos);
  }

  condition(): Expr {
    let left = this.andExpr();
    while (this.isWord('or')) {
      this.i++;
      left = { type: 'or', left, right: this.andExpr() };
    }
    return left;
  }

  private andExpr(): Expr {
    let left = this.notExpr();
    while (this.isWord('and')) {
      this.i++;
      left = { type: 'and', left, right: this.notExpr() };
    }
    return left;
  }

  private notExpr(): Expr {
    if (this.isWord('not')) {
      const at = this.next().pos;
      return { type: 'not', operand: this.nested(at, () => this.notExpr()) };
    }
    return this.comparison();
  }

  private comparison(): Expr {
    const left = this.value();
    const t = this.peek();
    if (t.t === 'op' && ['==', '!=', '<', '>', '<=', '>='].includes(t.v)) {
      this.i++;
      return { type: 'cmp', op: t.v as CmpOp, left, right: this.value() };
    }
    if (this.isWord('in')) {
      this.i++;
      return { type: 'cmp', op: 'in', left, right: this.value() };
    }
    if (this.isWord('not') && this.toks[this.i + 1]?.t === 'id' && (this.toks[this.i + 1] as { v: string }).v === 'in') {
      this.i += 2;
      return { type: 'cmp', op: 'not in', left, right: this.value() };
    }
    if (this.isWord('is')) {
      this.i++;
      let negated = false;
      if (this.isWord('not')) {
        this.i++;
        negated = true;
      }
      const name = this.next();
      if (name.t !== 'id' || !(TESTS as readonly string[]).includes(name.v)) {
        throw new ExprSyntaxError(`unknown test ${describe(name)} after "is" (expected one of: ${TESTS.join(', ')})`, name.pos);
      }
      return { type: 'test', operand: left, test: name.v as TestName, negated, pos: name.pos };
    }
    return left;
  }

  /** A primary with filters: what `{{ }}` holds. */
  value(): Expr {
    let e = this.primary();
    while (this.isOp('|')) {
      this.i++;
      const name = this.next();
      if (name.t !== 'id') throw new ExprSyntaxError(`expected a filter name after "|" but found ${describe(name)}`, name.pos);
      if (!(FILTERS as readonly string[]).includes(name.v)) {
        throw new ExprSyntaxError(`unknown filter "${name.v}" (available: ${FILTERS.join(', ')})`, name.pos);
      }
      const args: Expr[] = [];
      if (this.isOp('(')) {
        this.i++;
        if (!this.isOp(')')) {
          args.push(this.value());
          while (this.isOp(',')) {
            this.i++;
            args.push(this.value());
          }
        }
        this.expectOp(')');
      }
      e = { type: 'filter', input: e, name: name.v, args, pos: name.pos };
    }
    return e;
  }

  private primary(): Expr {
    const t = this.next();
    if (t.t === 'num' || t.t === 'str') return { type: 'lit', value: t.v };
    if (t.t === 'op' && t.v === '(') {
      const inner = this.nested(t.pos, () => this.condition());
      this.expectOp(')');
      return inner;
    }
    if (t.t === 'op' && t.v === '[') {
      const items: Expr[] = [];
      this.nested(t.pos, () => {
        if (this.isOp(']')) return;
        items.push(this.value());
        while (this.isOp(',')) {
          this.i++;
          items.push(this.value());
        }
      });
      this.expectOp(']');
      return { type: 'list', items };
    }
    if (t.t === 'id') {
      if (t.v in LITERAL_WORDS) return { type: 'lit', value: LITERAL_WORDS[t.v] };
      if (KEYWORDS.has(t.v)) throw new ExprSyntaxError(`expected a value but found "${t.v}"`, t.pos);
      const segments: Array<string | number> = [];
      for (;;) {
        if (this.isOp('.')) {
          this.i++;
          const seg = this.next();
          if (seg.t === 'id' || seg.t === 'num') segments.push(seg.t === 'num' ? seg.v : seg.v);
          else throw new ExprSyntaxError(`expected a name after "." but found ${describe(seg)}`, seg.pos);
        } else if (this.isOp('[')) {
          this.i++;
          const idx = this.next();
          if (idx.t !== 'num' && idx.t !== 'str') {
            throw new ExprSyntaxError(`expected a number or a quoted key inside [ ] but found ${describe(idx)}`, idx.pos);
          }
          segments.push(idx.v);
          this.expectOp(']');
        } else break;
      }
      return { type: 'path', root: t.v, segments, pos: t.pos };
    }
    throw new ExprSyntaxError(`expected a value but found ${describe(t)}`, t.pos);
  }
}

function describe(t: Tok): string {
  if (t.t === 'end') return 'the end of the expression';
  if (t.t === 'str') return `the string "${t.v}"`;
  return `"${t.v}"`;
}

/**
 * Parsed expressions by source text. A playbook renders the same few expressions for every step,
 * host and loop item (and the engine renders ahead for early checks); parsing each once saves a
 * measurable part of a run's start (profiled: ~70 ms of CPU under load). Trees are never mutated.
 */
const valueCache = new Map<string, Expr>();
const boolCache = new Map<string, Expr>();

export function parseValueExpr(src: string): Expr {
  const hit = valueCache.get(src);
  if (hit) return hit;
  const p = new Parser(lex(src));
  const e = p.value();
  p.end();
  valueCache.set(src, e);
  return e;
}

export function parseBoolExpr(src: string): Expr {
  const hit = boolCache.get(src);
  if (hit) return hit;
  const p = new Parser(lex(src));
  const e = p.condition();
  p.end();
  boolCache.set(src, e);
  return e;
}

// ---------------------------------------------------------------- evaluator

const MISSING = Symbol('missing');

export function evaluate(e: Expr, vars: Record<string, unknown>): unknown {
  const v = evalOrMissing(e, vars);
  if (v === MISSING) throw new UndefinedVariableError(pathText(e));
  return v;
}

function evalOrMissing(e: Expr, vars: Record<string, unknown>): unknown {
  switch (e.type) {
    case 'lit':
      return e.value;
    case 'list':
      return e.items.map((i) => evaluate(i, vars));
    case 'path': {
      let cur: unknown = own(vars, e.root);
      for (const seg of e.segments) {
        if (cur === MISSING) return MISSING;
        cur = index(cur, seg);
      }
      return cur;
    }
    case 'filter':
      return applyFilter(e, vars);
    case 'not':
      return !truthy(evaluate(e.operand, vars));
    case 'and':
      return truthy(evaluate(e.left, vars)) && truthy(evaluate(e.right, vars));
    case 'or':
      return truthy(evaluate(e.left, vars)) || truthy(evaluate(e.right, vars));
    case 'cmp':
      return compare(e.op, evaluate(e.left, vars), evaluate(e.right, vars));
    case 'test':
      return runTest(e, vars) !== e.negated;
  }
}

function own(obj: unknown, key: string | number): unknown {
  if (obj === null || typeof obj !== 'object') return MISSING;
  return Object.prototype.hasOwnProperty.call(obj, key) ? (obj as Record<string, unknown>)[key] : MISSING;
}

function index(cur: unknown, seg: string | number): unknown {
  if (Array.isArray(cur) && typeof seg === 'number') return seg >= 0 && seg < cur.length ? cur[seg] : MISSING;
  if (Array.isArray(cur)) return MISSING;
  return own(cur, seg);
}

function pathText(e: Expr): string {
  if (e.type === 'path') {
    return e.root + e.segments.map((s) => (typeof s === 'number' ? `[${s}]` : `.${s}`)).join('');
  }
  if (e.type === 'filter') return pathText(e.input);
  return 'value';
}

function runTest(e: Extract<Expr, { type: 'test' }>, vars: Record<string, unknown>): boolean {
  const v = evalOrMissing(e.operand, vars);
  if (e.test === 'defined') return v !== MISSING;
  if (e.test === 'undefined') return v === MISSING;
  if (v === MISSING) throw new UndefinedVariableError(pathText(e.operand));
  if (e.test === 'none') return v === null;
  const status = (v as { status?: unknown } | null)?.status;
  if (typeof status !== 'string') {
    throw new ExprEvalError(`"${pathText(e.operand)} is ${e.test}" needs a registered step result (a name given to "register:")`);
  }
  switch (e.test) {
    case 'changed':
      // 'would-change' is check mode's changed (Ansible reports changed in check mode too).
      return status === 'changed' || status === 'would-change';
    case 'ok':
      return status === 'ok';
    case 'failed':
      return status === 'failed';
    case 'skipped':
      return status === 'skipped';
    case 'succeeded':
      return status === 'ok' || status === 'changed' || status === 'would-change';
  }
}

function applyFilter(e: Extract<Expr, { type: 'filter' }>, vars: Record<string, unknown>): unknown {
  if (e.name === 'default' || e.name === 'd') {
    const v = evalOrMissing(e.input, vars);
    if (v !== MISSING) return v;
    return e.args.length ? evaluate(e.args[0]!, vars) : '';
  }
  const v = evaluate(e.input, vars);
  switch (e.name) {
    case 'string':
      return stringify(v);
    case 'int': {
      const n = typeof v === 'number' ? v : Number.parseInt(String(v), 10);
      return Number.isNaN(n) ? 0 : Math.trunc(n);
    }
    case 'bool':
      return truthy(v);
    case 'join': {
      if (!Array.isArray(v)) throw new ExprEvalError(`join needs a list, got ${typeName(v)}`);
      const sep = e.args.length ? stringify(evaluate(e.args[0]!, vars)) : '';
      return v.map(stringify).join(sep);
    }
    case 'lower':
      return stringify(v).toLowerCase();
    case 'upper':
      return stringify(v).toUpperCase();
    case 'length':
      if (Array.isArray(v) || typeof v === 'string') return v.length;
      if (v && typeof v === 'object') return Object.keys(v).length;
      throw new ExprEvalError(`length needs a list, string or mapping, got ${typeName(v)}`);
    case 'first':
    case 'last':
      if (!Array.isArray(v)) throw new ExprEvalError(`${e.name} needs a list, got ${typeName(v)}`);
      return e.name === 'first' ? v[0] : v[v.length - 1];
  }
  throw new ExprEvalError(`unknown filter "${e.name}"`);
}

/**
 * Truth as Jinja sees it (empty and zero are false), plus the strings "false", "no", "off"
 * and "0": `-e` values are strings, and `-e dry_run=false` must not mean true.
 */
export function truthy(v: unknown): boolean {
  if (typeof v === 'string') return !['', 'false', 'no', 'off', '0'].includes(v.trim().toLowerCase());
  if (Array.isArray(v)) return v.length > 0;
  if (v && typeof v === 'object') return Object.keys(v).length > 0;
  return !!v;
}

function compare(op: CmpOp, a: unknown, b: unknown): boolean {
  switch (op) {
    case '==':
      return deepEqual(a, b);
    case '!=':
      return !deepEqual(a, b);
    case 'in':
    case 'not in': {
      let found: boolean;
      if (Array.isArray(b)) found = b.some((x) => deepEqual(x, a));
      else if (typeof b === 'string') found = b.includes(stringify(a));
      else if (b && typeof b === 'object') found = Object.prototype.hasOwnProperty.call(b, String(a));
      else throw new ExprEvalError(`"in" needs a list, string or mapping on its right, got ${typeName(b)}`);
      return op === 'in' ? found : !found;
    }
    default: {
      const bothNum = typeof a === 'number' && typeof b === 'number';
      const bothStr = typeof a === 'string' && typeof b === 'string';
      if (!bothNum && !bothStr) throw new ExprEvalError(`cannot order ${typeName(a)} and ${typeName(b)} with "${op}"`);
      const x = a as number | string;
      const y = b as number | string;
      return op === '<' ? x < y : op === '>' ? x > y : op === '<=' ? x <= y : x >= y;
    }
  }
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  // `-e port=22` gives the string "22": let it equal the number 22, as a person expects.
  if ((typeof a === 'number' && typeof b === 'string') || (typeof a === 'string' && typeof b === 'number')) {
    return String(a) === String(b);
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') return JSON.stringify(a) === JSON.stringify(b);
  return false;
}

export function stringify(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `a ${typeof v}`;
}

/**
 * Root variables the expression cannot do without: those not under `| default(...)`, and not
 * tested with `is defined` / `is undefined` anywhere in the same expression.
 */
export function requiredRefs(e: Expr): string[] {
  const guarded = new Set<string>();
  const refs: string[] = [];
  const visit = (x: Expr, underDefault: boolean): void => {
    switch (x.type) {
      case 'path':
        if (!underDefault) refs.push(x.root);
        return;
      case 'list':
        x.items.forEach((i) => visit(i, underDefault));
        return;
      case 'filter':
        visit(x.input, underDefault || x.name === 'default' || x.name === 'd');
        x.args.forEach((a) => visit(a, underDefault));
        return;
      case 'not':
        visit(x.operand, underDefault);
        return;
      case 'and':
      case 'or':
      case 'cmp':
        visit(x.left, underDefault);
        visit(x.right, underDefault);
        return;
      case 'test':
        if ((x.test === 'defined' || x.test === 'undefined') && x.operand.type === 'path') guarded.add(x.operand.root);
        else visit(x.operand, underDefault);
        return;
      case 'lit':
        return;
    }
  };
  visit(e, false);
  return [...new Set(refs.filter((r) => !guarded.has(r)))];
}
