import yaml from 'js-yaml';
import type { Problem, SourceLocation } from '../util/errors.js';

/**
 * YAML parsed with js-yaml, plus where every node was written.
 *
 * js-yaml 4 has no AST; its `listener` option reports 'open'/'close' around every
 * composeNode call (loader.js). We rebuild a node tree from those events. Two quirks of
 * the loader shape the rebuild:
 *  - 'open' fires before separation space is skipped, so a node's start is found by
 *    skipping blanks and comments ourselves;
 *  - a block-mapping attempt composes a would-be key and, when no ':' follows, keeps it as
 *    the node itself: such a node has one child with the very same result, and is collapsed.
 *    When a mapping ends, a last would-be key may be composed for nothing: an odd trailing
 *    child of a mapping is dropped.
 */
export interface YamlNode {
  start: number;
  end: number;
  kind: 'mapping' | 'sequence' | 'scalar' | null;
  result: unknown;
  children: YamlNode[];
}

export interface ParsedYaml {
  file: string;
  value: unknown;
  root: YamlNode | undefined;
  /** Position of the node at `path` (keys and indices), or of its nearest written ancestor. */
  at(path: ReadonlyArray<string | number>): SourceLocation;
  /** Position of the key `path[last]` itself inside its mapping. */
  keyAt(path: ReadonlyArray<string | number>): SourceLocation;
}

export class YamlSyntaxError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.message);
  }
}

/** Where objects and arrays of any parsed document were written, by identity. */
const origins = new WeakMap<object, { doc: ParsedYaml; path: (string | number)[] }>();

export function originOf(value: unknown): { doc: ParsedYaml; path: (string | number)[] } | undefined {
  return value !== null && typeof value === 'object' ? origins.get(value) : undefined;
}

/**
 * Bounds on what one document may make baton build. js-yaml shares an aliased node by
 * reference, so parsing a "billion laughs" is quick, but everything that walks the value
 * afterwards (schema checks, template scans, rendering) would visit every expansion: the
 * aliases are counted, with the nodes each one stands for, and a document over the limits is
 * refused at the alias that crossed them. Playbooks use a few aliases of a few nodes, inventories at most a
 * few per host; a bomb needs millions.
 */
export const YAML_LIMITS = {
  /** Nesting of collections, aliases included (js-yaml's own guard is 100; playbooks use < 15). */
  maxDepth: 64,
  /** Alias uses (`*name`) in one document: a big inventory may give each host `<<: *defaults`. */
  maxAliases: 10_000,
  /** Nodes all the aliases of a document stand for, counted as if expanded. */
  maxAliasNodes: 1_000_000,
  /** Keys copied by merge keys (`<<: *name`) in one document. */
  maxMergeKeys: 100_000,
} as const;

export function parseYaml(text: string, file: string): ParsedYaml {
  const lineStarts = computeLineStarts(text);
  const toLoc = (offset: number): SourceLocation => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { file, line: lo + 1, col: offset - lineStarts[lo]! + 1 };
  };

  const stack: YamlNode[] = [];
  const tops: YamlNode[] = [];
  const aliases = new AliasBudget();
  let value: unknown;
  try {
    value = yaml.load(text, {
      filename: file,
      maxDepth: YAML_LIMITS.maxDepth,
      maxTotalMergeKeys: YAML_LIMITS.maxMergeKeys,
      listener(event, state) {
        if (event === 'open') {
          stack.push({ start: state.position, end: state.position, kind: null, result: undefined, children: [] });
          return;
        }
        const node = stack.pop();
        if (!node) return;
        node.end = state.position;
        node.kind = state.kind as YamlNode['kind'];
        node.result = state.result;
        node.start = skipBlank(text, node.start, node.end);
        if (node.kind === null && text.charCodeAt(node.start) === 42 /* * */) {
          const over = aliases.use(state.result, stack.length);
          if (over) throw new YamlSyntaxError({ loc: toLoc(node.start), message: `YAML: ${over}` });
        } else if (state.result !== null && typeof state.result === 'object') aliases.closed(state.result);
        const parent = stack[stack.length - 1];
        (parent ? parent.children : tops).push(node);
      },
    } as yaml.LoadOptions);
  } catch (err) {
    if (err instanceof yaml.YAMLException) throw new YamlSyntaxError(syntaxProblem(err, file));
    throw err;
  }

  const root = tops.length ? normalize(tops[tops.length - 1]!) : undefined;
  const locOf = (n: YamlNode | undefined) => (n ? toLoc(n.start) : { file, line: 1, col: 1 });

  const walk = (path: ReadonlyArray<string | number>): { node?: YamlNode; key?: YamlNode; deepest?: YamlNode } => {
    let node = root;
    let key: YamlNode | undefined;
    let deepest = root;
    for (const step of path) {
      if (!node) break;
      const next = childAt(node, step);
      if (!next) return { deepest };
      node = next.value;
      key = next.key;
      deepest = node ?? next.key ?? deepest;
    }
    return { node, key, deepest };
  };

  const doc: ParsedYaml = {
    file,
    value,
    root,
    at(path) {
      const w = walk(path);
      // An empty value (`key:` and nothing) has no text of its own: point at its key.
      if (w.node && w.node.kind === null && w.node.result === null && w.key) return locOf(w.key);
      return locOf(w.node ?? w.deepest);
    },
    keyAt(path) {
      const w = walk(path);
      return locOf(w.key ?? w.node ?? w.deepest);
    },
  };
  if (root) register(root, [], doc);
  return doc;
}

/** Counts alias uses and what they expand to; says what is wrong once a limit is crossed. */
class AliasBudget {
  private uses = 0;
  private nodes = 0;
  /** Expanded size and depth of every collection measured so far (each is walked once). */
  private readonly measured = new WeakMap<object, { size: number; depth: number }>();
  /** Collections whose node is complete: an alias to any other is inside the node it names. */
  private readonly complete = new WeakSet<object>();

  closed(result: object): void {
    this.complete.add(result);
  }

  use(target: unknown, depth: number): string | undefined {
    this.uses++;
    if (this.uses > YAML_LIMITS.maxAliases) {
      return `more than ${YAML_LIMITS.maxAliases} aliases in one document: baton refuses it (an alias bomb?)`;
    }
    if (target !== null && typeof target === 'object' && !this.complete.has(target)) return CYCLE;
    let m: { size: number; depth: number };
    try {
      m = this.measure(target, new Set());
    } catch (err) {
      if (err instanceof CycleError) return CYCLE;
      throw err;
    }
    this.nodes += m.size;
    if (this.nodes > YAML_LIMITS.maxAliasNodes) {
      return `aliases expand to more than ${YAML_LIMITS.maxAliasNodes} nodes: baton refuses the document (an alias bomb, "billion laughs"?)`;
    }
    if (depth + m.depth > YAML_LIMITS.maxDepth) {
      return `nesting deeper than ${YAML_LIMITS.maxDepth} levels through aliases: baton refuses the document`;
    }
    return undefined;
  }

  private measure(v: unknown, path: Set<object>): { size: number; depth: number } {
    if (v === null || typeof v !== 'object') return { size: 1, depth: 0 };
    const known = this.measured.get(v);
    if (known) return known;
    if (path.has(v)) throw new CycleError();
    path.add(v);
    let size = 1;
    let depth = 0;
    for (const child of Object.values(v as Record<string, unknown>)) {
      const c = this.measure(child, path);
      size += c.size;
      depth = Math.max(depth, c.depth);
      // Past the limit the exact figure no longer matters: stop walking early.
      if (size > YAML_LIMITS.maxAliasNodes) break;
    }
    path.delete(v);
    const m = { size, depth: depth + 1 };
    this.measured.set(v, m);
    return m;
  }
}

class CycleError extends Error {}
const CYCLE = 'this alias refers to a node that contains it: a YAML cycle, which baton cannot read';

function childAt(node: YamlNode, step: string | number): { key?: YamlNode; value?: YamlNode } | undefined {
  if (node.kind === 'mapping') {
    for (let i = 0; i + 1 < node.children.length; i += 2) {
      const k = node.children[i]!;
      if (String(k.result) === String(step)) return { key: k, value: node.children[i + 1] };
    }
    return undefined;
  }
  if (node.kind === 'sequence' && typeof step === 'number') {
    const item = node.children[step];
    return item ? { value: item } : undefined;
  }
  return undefined;
}

function normalize(node: YamlNode): YamlNode {
  let n = node;
  // A mapping's only child is never the mapping itself, except as that would-be key: a flow
  // mapping written as a block sequence item (`- { a: 1 }`) is one.
  while (n.children.length === 1 && n.children[0]!.result === n.result && (n.kind !== 'mapping' || isObject(n.result))) {
    n = n.children[0]!;
  }
  // A collapsed flow collection keeps the outer node's kind when the child had none recorded.
  n.children = n.children.map(normalize);
  if (n.kind === 'mapping' && n.children.length % 2 === 1) n.children.pop();
  return n;
}

function isObject(v: unknown): boolean {
  return v !== null && typeof v === 'object';
}

function register(node: YamlNode, path: (string | number)[], doc: ParsedYaml): void {
  if (node.result !== null && typeof node.result === 'object' && !origins.has(node.result)) {
    origins.set(node.result, { doc, path });
  }
  if (node.kind === 'mapping') {
    for (let i = 0; i + 1 < node.children.length; i += 2) {
      register(node.children[i + 1]!, [...path, String(node.children[i]!.result)], doc);
    }
  } else if (node.kind === 'sequence') {
    node.children.forEach((c, i) => register(c, [...path, i], doc));
  }
}

function computeLineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  return starts;
}

/** Skip spaces, line breaks and comments from `pos`, never past `limit`. */
function skipBlank(text: string, pos: number, limit: number): number {
  let p = pos;
  while (p < limit) {
    const c = text.charCodeAt(p);
    if (c === 32 || c === 9 || c === 10 || c === 13) p++;
    else if (c === 35 /* # */ && (p === 0 || /\s/.test(text[p - 1]!))) {
      while (p < limit && text.charCodeAt(p) !== 10) p++;
    } else break;
  }
  return p;
}

function syntaxProblem(err: yaml.YAMLException, file: string): Problem {
  const mark = err.mark as { line?: number; column?: number } | undefined;
  const line = (mark?.line ?? 0) + 1;
  const col = (mark?.column ?? 0) + 1;
  const reason = err.reason || 'invalid YAML';
  for (const [re, say] of SYNTAX_PATTERNS) {
    const m = reason.match(re);
    if (m) return { loc: { file, line, col }, message: `YAML: ${say(m)}` };
  }
  const hint = SYNTAX_HINTS[reason];
  return { loc: { file, line, col }, message: `YAML syntax error: ${reason}${hint ? ` (${hint})` : ''}` };
}

/** What usually causes js-yaml's terse reasons, for whoever reads them at 3 a.m. */
const SYNTAX_HINTS: Record<string, string> = {
  'duplicated mapping key': 'the same key appears twice in one mapping; YAML keeps only one, so remove or rename the other',
  'bad indentation of a mapping entry': 'check that this key lines up with the keys above it',
  'bad indentation of a sequence entry': 'check that this "-" lines up with the items above it',
  'tab characters must not be used in indentation': 'indent with spaces',
  'expected valid JSON character': 'a control character inside a quoted string: write it as an escape such as \\t, or remove it',
  'the stream contains non-printable characters': 'control characters are not allowed in YAML text; is this a binary file?',
};

/** Reasons js-yaml words with a variable part, and what to say about them. */
const SYNTAX_PATTERNS: Array<[RegExp, (m: RegExpMatchArray) => string]> = [
  [/^nesting exceeded maxDepth/, () => `nesting deeper than ${YAML_LIMITS.maxDepth} levels: baton refuses the document (playbooks need far less)`],
  [/^merge keys exceeded maxTotalMergeKeys/, () => `merge keys (<<) copy more than ${YAML_LIMITS.maxMergeKeys} keys: baton refuses the document (a merge-key bomb?)`],
  [
    /^unknown tag !<(.*)>$/,
    (m) => `unknown tag ${shortTag(m[1]!)}: baton reads plain YAML data (no language-specific tags such as !!js/function or !!python/object)`,
  ],
];

function shortTag(tag: string): string {
  return tag.startsWith('tag:yaml.org,2002:') ? `!!${tag.slice('tag:yaml.org,2002:'.length)}` : tag.startsWith('!') ? tag : `!<${tag}>`;
}
