/**
 * Python literals, the way Ansible's INI plugin types a value: it hands the text to
 * `ast.literal_eval` and keeps the text as a string when that fails. So `5` is an int, `1.5`
 * a float, `True`/`False`/`None` are booleans and null, `'a'`/`"a"` strings, `[1, 2]`, `(1, 2)`,
 * `{'k': 1}` collections — while `yes`, `0755` (not a Python 3 literal) or `a b` stay text.
 * Tuples and sets become lists, as they do in `ansible-inventory --list`. Complex numbers and
 * byte strings are left as text (they have no JSON form). Nothing is ever evaluated.
 */

class NotLiteral extends Error {}

type Tok =
  | { t: 'num'; v: number }
  | { t: 'str'; v: string }
  | { t: 'name'; v: string }
  | { t: 'op'; v: string }
  | { t: 'end' };

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v', '\n': '' };

function readString(s: string, i: number, raw: boolean): { v: string; next: number } {
  const q = s[i]!;
  const triple = s.startsWith(q.repeat(3), i);
  const close = triple ? q.repeat(3) : q;
  let p = i + close.length;
  let out = '';
  for (;;) {
    if (p >= s.length) throw new NotLiteral();
    if (s.startsWith(close, p)) return { v: out, next: p + close.length };
    const c = s[p]!;
    if (c === '\n' && !triple) throw new NotLiteral();
    if (c === '\\') {
      const n = s[p + 1];
      if (n === undefined) throw new NotLiteral();
      if (raw) {
        out += c + n;
        p += 2;
        continue;
      }
      if (n in ESCAPES) {
        out += ESCAPES[n];
        p += 2;
      } else if (n === 'x' && /^[0-9a-fA-F]{2}$/.test(s.slice(p + 2, p + 4))) {
        out += String.fromCharCode(parseInt(s.slice(p + 2, p + 4), 16));
        p += 4;
      } else if ((n === 'u' && /^[0-9a-fA-F]{4}$/.test(s.slice(p + 2, p + 6))) || (n === 'U' && /^[0-9a-fA-F]{8}$/.test(s.slice(p + 2, p + 10)))) {
        const len = n === 'u' ? 4 : 8;
        out += String.fromCodePoint(parseInt(s.slice(p + 2, p + 2 + len), 16));
        p += 2 + len;
      } else if (/[0-7]/.test(n)) {
        const m = /^[0-7]{1,3}/.exec(s.slice(p + 1))![0];
        out += String.fromCharCode(parseInt(m, 8));
        p += 1 + m.length;
      } else {
        out += c + n;
        p += 2;
      }
      continue;
    }
    out += c;
    p++;
  }
}

function tokenize(s: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f') {
      i++;
      continue;
    }
    if (c === '\\' && s[i + 1] === '\n') {
      i += 2;
      continue;
    }
    if (c === '#') {
      while (i < s.length && s[i] !== '\n') i++;
      continue;
    }
    const prefix = /^([rRuUbBfF]{1,2})?(['"])/.exec(s.slice(i));
    if (prefix) {
      const p = (prefix[1] ?? '').toLowerCase();
      // Byte strings and f-strings have no plain-text literal value here.
      if (p.includes('b') || p.includes('f') || (p.length === 2 && p !== 'ur' && p !== 'ru' && !p.includes('r'))) throw new NotLiteral();
      const { v, next } = readString(s, i + (prefix[1]?.length ?? 0), p.includes('r'));
      toks.push({ t: 'str', v });
      i = next;
      continue;
    }
    const num =
      /^0[xX](?:_?[0-9a-fA-F])+/.exec(s.slice(i)) ??
      /^0[oO](?:_?[0-7])+/.exec(s.slice(i)) ??
      /^0[bB](?:_?[01])+/.exec(s.slice(i)) ??
      /^(?:(?:[0-9](?:_?[0-9])*)?\.[0-9](?:_?[0-9])*|[0-9](?:_?[0-9])*\.?)(?:[eE][+-]?[0-9](?:_?[0-9])*)?/.exec(s.slice(i));
    if (num && num[0]) {
      let text = num[0];
      const after = s[i + text.length];
      if (after !== undefined && /[\p{L}\p{N}_]/u.test(after)) throw new NotLiteral(); // 1j, 12abc
      i += text.length;
      text = text.replace(/_/g, '');
      let v: number;
      if (/^0[xX]/.test(text)) v = parseInt(text.slice(2), 16);
      else if (/^0[oO]/.test(text)) v = parseInt(text.slice(2), 8);
      else if (/^0[bB]/.test(text)) v = parseInt(text.slice(2), 2);
      else if (/[.eE]/.test(text)) v = Number(text);
      else {
        // Python 3 has no leading-zero decimal ints other than zeros: `0755` is a syntax error.
        if (/^0[0-9]/.test(text) && !/^0+$/.test(text)) throw new NotLiteral();
        v = Number(text);
      }
      toks.push({ t: 'num', v });
      continue;
    }
    const name = /^[\p{L}_][\p{L}\p{N}_]*/u.exec(s.slice(i));
    if (name) {
      toks.push({ t: 'name', v: name[0] });
      i += name[0].length;
      continue;
    }
    if ('[](){},:+-'.includes(c)) {
      toks.push({ t: 'op', v: c });
      i++;
      continue;
    }
    throw new NotLiteral();
  }
  toks.push({ t: 'end' });
  return toks;
}

class Parser {
  private i = 0;
  constructor(private readonly toks: Tok[]) {}

  private peek(): Tok {
    return this.toks[this.i]!;
  }
  private isOp(v: string): boolean {
    const t = this.peek();
    return t.t === 'op' && t.v === v;
  }
  private expectOp(v: string): void {
    if (!this.isOp(v)) throw new NotLiteral();
    this.i++;
  }

  /** The whole input: one expression, or a bare tuple `1, 2`. */
  top(): unknown {
    const first = this.expr();
    if (this.isOp(',')) {
      const items = [first];
      while (this.isOp(',')) {
        this.i++;
        if (this.peek().t === 'end') break;
        items.push(this.expr());
      }
      if (this.peek().t !== 'end') throw new NotLiteral();
      return items;
    }
    if (this.peek().t !== 'end') throw new NotLiteral();
    return first;
  }

  private expr(): unknown {
    const t = this.peek();
    if (t.t === 'op' && (t.v === '-' || t.v === '+')) {
      this.i++;
      const v = this.expr();
      if (typeof v !== 'number') throw new NotLiteral();
      return t.v === '-' ? -v : v;
    }
    return this.atom();
  }

  private atom(): unknown {
    const t = this.peek();
    this.i++;
    switch (t.t) {
      case 'num':
        return t.v;
      case 'str': {
        let v = t.v;
        // Adjacent literals concatenate, as in Python source.
        while (this.peek().t === 'str') v += (this.toks[this.i++] as { v: string }).v;
        return v;
      }
      case 'name':
        if (t.v === 'True') return true;
        if (t.v === 'False') return false;
        if (t.v === 'None') return null;
        throw new NotLiteral();
      case 'op':
        if (t.v === '[') return this.seq(']');
        if (t.v === '(') {
          if (this.isOp(')')) {
            this.i++;
            return [];
          }
          const first = this.expr();
          if (this.isOp(')')) {
            this.i++;
            return first; // parenthesised value, not a tuple
          }
          this.expectOp(',');
          return [first, ...this.seq(')')];
        }
        if (t.v === '{') return this.braces();
        throw new NotLiteral();
      default:
        throw new NotLiteral();
    }
  }

  /** Items up to `close` (already past the opening bracket), a trailing comma allowed. */
  private seq(close: string): unknown[] {
    const out: unknown[] = [];
    while (!this.isOp(close)) {
      out.push(this.expr());
      if (this.isOp(',')) this.i++;
      else if (!this.isOp(close)) throw new NotLiteral();
    }
    this.i++;
    return out;
  }

  private braces(): unknown {
    if (this.isOp('}')) {
      this.i++;
      return {};
    }
    const first = this.expr();
    if (this.isOp(':')) {
      const out: Record<string, unknown> = {};
      this.i++;
      out[keyOf(first)] = this.expr();
      while (this.isOp(',')) {
        this.i++;
        if (this.isOp('}')) break;
        const k = this.expr();
        this.expectOp(':');
        out[keyOf(k)] = this.expr();
      }
      this.expectOp('}');
      return out;
    }
    const items = [first];
    while (this.isOp(',')) {
      this.i++;
      if (this.isOp('}')) break;
      items.push(this.expr());
    }
    this.expectOp('}');
    if (items.some((x) => x !== null && typeof x === 'object')) throw new NotLiteral(); // unhashable
    return [...new Set(items)];
  }
}

function keyOf(k: unknown): string {
  if (k !== null && typeof k === 'object') throw new NotLiteral(); // lists and dicts are unhashable
  if (k === true) return 'True';
  if (k === false) return 'False';
  if (k === null) return 'None';
  return String(k);
}

/** The value Ansible's INI plugin gives `text`: a Python literal's value, else the text itself. */
export function iniValue(text: string): unknown {
  try {
    return new Parser(tokenize(text.replace(/^[ \t]+/, ''))).top();
  } catch (e) {
    if (e instanceof NotLiteral || e instanceof RangeError) return text;
    throw e;
  }
}
