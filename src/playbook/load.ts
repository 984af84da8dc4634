import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Host, Inventory } from '../inventory/model.js';
import { selectHosts } from '../inventory/pattern.js';
import { formatLocation, ValidationError, type Problem, type SourceLocation } from '../util/errors.js';
import { ConditionError, conditionRefs, parseCondition } from './conditions.js';
import { parseValueExpr, requiredRefs } from './expr.js';
import type { OnFailure, PlacementSpec, Play, Playbook, PlayLoop, StepSpec } from './model.js';
import { playItems, type PlayItem } from './play-items.js';
import { RoleLoader, roleSearchPath } from './roles.js';
import { checkFenceOrder, guardsTakeover, type KindRoles } from './safety.js';
import { checkAgainst, describeValue } from './schema-check.js';
import { readSource } from './read-source.js';
import { PLAY_INSTEAD, STEP_INSTEAD } from './ansible-habits.js';
import { provablySkipped } from './static-when.js';
import { playbookValidator, roleStepsValidator, stepArgsValidator, STEP_KEYS } from './schemas.js';
import { closest, didYouMean } from './suggest.js';
import { isTemplate, parseTemplate, render, TemplateError } from './template.js';
import { MAGIC_VARS } from './vars.js';
import { parseYaml, YamlSyntaxError, type ParsedYaml } from './yaml-source.js';

type Vars = Record<string, unknown>;
type Path = Array<string | number>;

/** What the loader needs of the step registry (StepRegistry fits; tests pass small fakes). */
export interface KindCatalog extends KindRoles {
  has(kind: string): boolean;
  kinds(): string[];
  /** The kind's JSON Schema for its arguments. */
  schema(kind: string): object;
}

export interface LoadOptions {
  inventory: Inventory;
  extraVars?: Vars;
  registry: KindCatalog;
  /** Role directories searched first (a list, or a PATH-like string). */
  rolesPath?: string | string[];
  /** `requires_fence` for plays that do not say (default false). */
  requiresFence?: boolean;
}

/**
 * Read, check and expand a playbook. Every problem found is reported at once in one
 * ValidationError, each at file:line:col; nothing is returned unless the whole playbook is sound.
 */
export function loadPlaybook(file: string, opts: LoadOptions): Playbook {
  return loadPlaybookText(readSource(file, 'playbook'), file, opts);
}

export function loadPlaybookText(text: string, file: string, opts: LoadOptions): Playbook {
  let doc: ParsedYaml;
  try {
    doc = parseYaml(text, file);
  } catch (err) {
    if (err instanceof YamlSyntaxError) throw new ValidationError([err.problem]);
    throw err;
  }
  const problems: Problem[] = [];
  const data = doc.value;
  if (!Array.isArray(data)) {
    const what = data === null || data === undefined ? 'an empty file' : isMapping(data) ? 'a mapping' : describeValue(data);
    const loc = data === null || data === undefined ? { file, line: 1, col: 1 } : doc.at([]);
    problems.push({ loc, message: `a playbook is a list of plays ("- hosts: ..."), got ${what}` });
    throw new ValidationError(problems);
  }
  problems.push(...insteadOfAnsible(checkAgainst(playbookValidator(), data, { doc, basePath: [], rootLabel: 'the playbook' }), data, doc));

  const ctx = new LoadContext(file, doc, opts, problems);
  const plays: Play[] = [];
  data.forEach((raw, pi) => {
    if (isMapping(raw)) plays.push(ctx.play(raw, pi));
  });
  if (problems.length) throw new ValidationError(sortProblems(problems));
  return { file, plays, notices: ctx.notices };
}

/**
 * "unknown key" for an Ansible play keyword baton does without: say what to write instead.
 * `- import_playbook: x.yml` has no hosts, naturally: that it lacks them is not news.
 */
function insteadOfAnsible(problems: Problem[], plays: unknown[], doc: ParsedYaml): Problem[] {
  const importing = new Set<string>();
  plays.forEach((p, i) => {
    if (isMapping(p) && (p.import_playbook !== undefined || p.include_playbook !== undefined)) importing.add(formatLocation(doc.at([i])));
  });
  return problems
    .filter((p) => !(p.message.startsWith('missing required key "hosts"') && importing.has(formatLocation(p.loc))))
    .map((p) => {
    const m = /^unknown key "([^"]+)" in play /.exec(p.message);
    const instead = m ? PLAY_INSTEAD[m[1]!] : undefined;
      return instead ? { loc: p.loc, message: `"${m![1]}": ${instead}` } : p;
    });
}

function sortProblems(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems
    .filter((p) => {
      const k = `${p.loc.file}:${p.loc.line}:${p.loc.col}:${p.message}`;
      return seen.has(k) ? false : (seen.add(k), true);
    })
    .map((p, i) => ({ p, i }))
    .sort((a, b) => (a.p.loc.file === b.p.loc.file ? a.p.loc.line - b.p.loc.line || a.p.loc.col - b.p.loc.col || a.i - b.i : a.i - b.i))
    .map((x) => x.p);
}

/** What a step may refer to, beyond the magic vars. */
interface Scope {
  names: Set<string>;
  /** Names given to `register:` so far in the play, shared by its roles and steps. */
  registered: Set<string>;
  /** Hosts the play targets: a name only some of them define is reported with who lacks it. */
  targets: Host[] | undefined;
  /** The item name of a looped play: a step's own loop may not hide it. */
  playLoopVar?: string;
}

class LoadContext {
  private readonly roles: RoleLoader;
  private readonly extra: Vars;
  /** A fence or release step was seen in an earlier play: takeovers after it are guarded. */
  private guardSeen = false;
  readonly notices: Problem[] = [];
  /** Names any step of the playbook registers: a condition on one is decided at run time. */
  private readonly registeredAnywhere = new Set<string>();
  /** The vars files of the play being loaded, for their own template checks. */
  private loadedVarsFiles: Array<{ doc: ParsedYaml }> = [];

  constructor(
    private readonly file: string,
    private readonly doc: ParsedYaml,
    private readonly opts: LoadOptions,
    private readonly problems: Problem[],
  ) {
    this.roles = new RoleLoader(roleSearchPath(file, opts.rolesPath));
    this.extra = opts.extraVars ?? {};
  }

  play(raw: Vars, pi: number): Play {
    const doc = this.doc;
    const at = (...p: Path) => doc.at([pi, ...p]);
    const vars = { ...(isMapping(raw.vars) ? raw.vars : {}), ...this.varsFiles(raw, pi) };
    if (raw.gather_facts !== undefined) {
      this.notices.push({ loc: doc.keyAt([pi, 'gather_facts']), message: 'gather_facts is ignored: baton gathers no facts, each step probes what it needs on the node' });
    }
    const hosts = typeof raw.hosts === 'string' ? raw.hosts : '';
    const loop = this.playLoop(raw, pi, vars);
    const targets = hosts ? this.resolvePlayHosts(hosts, vars, [pi, 'hosts'], loop) : undefined;
    const playTags = tagList(raw.tags);

    if (raw.steps !== undefined && raw.tasks !== undefined) {
      this.problems.push({ loc: doc.keyAt([pi, 'tasks']), message: `play has both "steps" and "tasks" (the same thing): keep one` });
    }
    const stepsKey = raw.steps !== undefined ? 'steps' : 'tasks';
    const rawSteps = Array.isArray(raw[stepsKey]) ? (raw[stepsKey] as unknown[]) : [];

    const scope: Scope = {
      names: new Set([...MAGIC_VARS, ...Object.keys(this.extra), ...Object.keys(vars), ...(loop ? [loop.var] : [])]),
      registered: new Set(),
      targets,
      playLoopVar: loop?.var,
    };
    if (typeof raw.lock === 'string') this.checkTemplates(raw.lock, [pi, 'lock'], doc, scope, 'lock');
    if (isMapping(raw.vars)) this.checkTemplates(raw.vars, [pi, 'vars'], doc, scope, 'play vars');
    for (const f of this.loadedVarsFiles) this.checkTemplates(f.doc.value, [], f.doc, scope, `vars file ${path.basename(f.doc.file)}`);

    const steps: StepSpec[] = [];
    let slot = 0;
    const roleRefs = Array.isArray(raw.roles) ? raw.roles : [];
    roleRefs.forEach((ref, ri) => {
      const name = typeof ref === 'string' ? ref : isMapping(ref) && typeof ref.role === 'string' ? ref.role : undefined;
      const sid = slot++;
      if (!name) return;
      const refPath: Path = [pi, 'roles', ri, ...(typeof ref === 'string' ? [] : ['role'])];
      const stepsFrom = isMapping(ref) && typeof ref.steps_from === 'string' ? ref.steps_from : undefined;
      const role = this.roles.load(name, doc.at(refPath), this.problems, stepsFrom);
      if (!role) return;
      const params = isMapping(ref) && isMapping(ref.vars) ? ref.vars : {};
      const roleTags = isMapping(ref) ? tagList(ref.tags) : [];
      if (role.stepsDoc) {
        this.problems.push(...checkAgainst(roleStepsValidator(), role.steps, { doc: role.stepsDoc, basePath: [], rootLabel: `role "${name}" steps` }));
      }
      const roleScope: Scope = {
        names: new Set([...scope.names, ...Object.keys(role.defaults), ...Object.keys(params)]),
        registered: scope.registered,
        targets,
        playLoopVar: scope.playLoopVar,
      };
      role.steps.forEach((rs, k) => {
        if (!isMapping(rs) || !role.stepsDoc) return;
        const step = this.step(rs, {
          id: `p${pi}.s${sid}.${name}.s${k}`,
          doc: role.stepsDoc,
          path: [k],
          scope: roleScope,
          inheritedTags: [...playTags, ...roleTags],
          role: { name, defaults: role.defaults, params },
        });
        if (step) steps.push(step);
      });
    });
    // As in Ansible, role defaults are visible to the whole play (the step's own role's win):
    // `export_path: "{{ mount_point }}"` in nfs-export reads the volume role's mount_point.
    const playDefaults: Vars = {};
    for (const s of steps) if (s.role) Object.assign(playDefaults, s.role.defaults);
    for (const s of steps) if (s.role) s.role = { ...s.role, defaults: { ...playDefaults, ...s.role.defaults } };

    rawSteps.forEach((rs, si) => {
      if (!isMapping(rs)) return;
      const step = this.step(rs, { id: `p${pi}.s${slot + si}`, doc, path: [pi, stepsKey, si], scope, inheritedTags: playTags });
      if (step) steps.push(step);
    });

    const play: Play = {
      name: typeof raw.name === 'string' ? raw.name : hosts,
      hosts,
      vars,
      steps,
      tags: playTags,
      loc: at(),
    };
    if (typeof raw.forks === 'number') play.forks = raw.forks;
    if (typeof raw.serial === 'number') play.serial = raw.serial;
    if (typeof raw.lock === 'string') play.lock = raw.lock;
    if (raw.on_failure === 'rollback' || raw.on_failure === 'stop') play.onFailure = raw.on_failure as OnFailure;
    if (loop) play.loop = loop;
    if (isMapping(raw.placement) && raw.loop === undefined) {
      const spec: PlacementSpec = {};
      for (const k of ['move', 'to', 'evacuate', 'failover', 'start'] as const) if (typeof raw.placement[k] === 'string') spec[k] = raw.placement[k] as string;
      play.placement = spec;
    }
    const requiresFence = typeof raw.requires_fence === 'boolean' ? raw.requires_fence : this.opts.requiresFence;
    if (requiresFence !== undefined) play.requiresFence = requiresFence;
    for (const s of steps) if (s.register) this.registeredAnywhere.add(s.register);
    if (targets) {
      play.steps = steps.filter((s) => {
        const cond = provablySkipped(s, play, targets, { inventory: this.opts.inventory, extraVars: this.extra, runtimeNames: this.registeredAnywhere });
        if (cond === undefined) return true;
        this.notices.push({ loc: s.loc, message: `left out of the play: ${s.name ? `"${s.name}"` : s.kind} never runs here (when: ${cond} is false for every host of the play)` });
        return false;
      });
    }
    if (typeof raw.become === 'boolean') play.become = raw.become;
    if (typeof raw.become_user === 'string') play.becomeUser = raw.become_user;
    if (requiresFence) this.problems.push(...checkFenceOrder(play, this.opts.registry, this.guardSeen));
    if (guardsTakeover(play, this.opts.registry)) this.guardSeen = true;
    return play;
  }

  /**
   * A play's `loop:`, `loop_control:` and `on_item_failure:`. The item list itself is rendered at
   * run time (it may come from -e); here only what can be known is checked.
   */
  private playLoop(raw: Vars, pi: number, vars: Vars): PlayLoop | undefined {
    const doc = this.doc;
    const control = isMapping(raw.loop_control) ? raw.loop_control : undefined;
    if (raw.placement !== undefined && raw.loop !== undefined) {
      this.problems.push({ loc: doc.keyAt([pi, 'placement']), message: `play has both "placement" and "loop": placement makes the item list (one per group to move); keep one` });
    }
    if (raw.loop === undefined && isMapping(raw.placement)) {
      const kinds = (['move', 'evacuate', 'failover', 'start'] as const).filter((k) => raw.placement && (raw.placement as Vars)[k] !== undefined);
      if (kinds.length !== 1) {
        this.problems.push({ loc: doc.at([pi, 'placement']), message: `placement: give exactly one of move (a group, with to), evacuate (a node), failover (a node) or start (a group, with to)${kinds.length ? `, not ${kinds.join(' and ')}` : ''}` });
      } else if (kinds[0] !== 'move' && kinds[0] !== 'start' && raw.placement.to !== undefined) {
        this.problems.push({ loc: doc.keyAt([pi, 'placement', 'to']), message: `placement: "to" goes with move and start only: ${kinds[0]} sends each group to its own next preferred node` });
      }
      const names = new Set([...MAGIC_VARS, ...Object.keys(this.extra), ...Object.keys(vars), ...Object.keys(this.opts.inventory.groups.get('all')?.vars ?? {})]);
      this.checkTemplates(raw.placement, [pi, 'placement'], doc, { names, registered: new Set(), targets: undefined }, 'placement');
      const loopVar = control && typeof control.loop_var === 'string' ? control.loop_var : 'item';
      if ((MAGIC_VARS as readonly string[]).includes(loopVar)) {
        this.problems.push({ loc: doc.at([pi, 'loop_control', 'loop_var']), message: `loop_var "${loopVar}" is a name baton sets itself: choose another (e.g. move)` });
      }
      // The items are the moves, known only once the groups are observed (engine/placement.ts).
      const loop: PlayLoop = { items: [], var: loopVar, onItemFailure: raw.on_item_failure === 'rollback_all' ? 'rollback_all' : 'rollback_item' };
      if (control && typeof control.label === 'string') loop.label = control.label;
      if (control && typeof control.concurrency === 'number') loop.concurrency = control.concurrency;
      return loop;
    }
    if (raw.loop === undefined) {
      for (const key of ['loop_control', 'on_item_failure'] as const) {
        if (raw[key] !== undefined) this.problems.push({ loc: doc.keyAt([pi, key]), message: `"${key}" without "loop": it only means something in a play that runs once per item of a loop` });
      }
      return undefined;
    }
    if (typeof raw.loop === 'string' && !isTemplate(raw.loop)) {
      this.problems.push({ loc: doc.at([pi, 'loop']), message: `"loop" must be a list or a "{{ template }}" that renders to one, got the string ${JSON.stringify(raw.loop)}` });
    }
    const names = new Set([...MAGIC_VARS, ...Object.keys(this.extra), ...Object.keys(vars), ...Object.keys(this.opts.inventory.groups.get('all')?.vars ?? {})]);
    this.checkTemplates(raw.loop, [pi, 'loop'], doc, { names, registered: new Set(), targets: undefined }, 'play loop');
    const loopVar = control && typeof control.loop_var === 'string' ? control.loop_var : 'item';
    if ((MAGIC_VARS as readonly string[]).includes(loopVar)) {
      this.problems.push({ loc: doc.at([pi, 'loop_control', 'loop_var']), message: `loop_var "${loopVar}" is a name baton sets itself: choose another (e.g. group)` });
    }
    const loop: PlayLoop = {
      items: raw.loop,
      var: loopVar,
      onItemFailure: raw.on_item_failure === 'rollback_all' ? 'rollback_all' : 'rollback_item',
    };
    if (control && typeof control.label === 'string') {
      loop.label = control.label;
      this.checkTemplates(control.label, [pi, 'loop_control', 'label'], doc, { names: new Set([...names, loopVar]), registered: new Set(), targets: undefined }, 'loop_control.label');
    }
    if (control && typeof control.concurrency === 'number') loop.concurrency = control.concurrency;
    return loop;
  }

  /**
   * `hosts:` of a play; in a looped play it may name the item (`"{{ group.to }}"`): then it is
   * checked for every item the loop renders to now, or, when the list is known only at run time,
   * only for the names it reads.
   */
  private resolvePlayHosts(pattern: string, playVars: Vars, path: Path, loop: PlayLoop | undefined): Host[] | undefined {
    if (!loop || !isTemplate(pattern)) return this.resolveHosts(pattern, playVars, path);
    let items: PlayItem[];
    try {
      items = playItems({ vars: playVars, loop }, this.opts.inventory, this.extra);
    } catch {
      const names = new Set([...MAGIC_VARS, ...Object.keys(this.extra), ...Object.keys(playVars), ...Object.keys(this.opts.inventory.groups.get('all')?.vars ?? {}), loop.var]);
      this.checkTemplates(pattern, path, this.doc, { names, registered: new Set(), targets: undefined }, 'hosts');
      return undefined;
    }
    const all = new Map<string, Host>();
    for (const item of items) {
      const found = this.resolveHosts(pattern, { ...playVars, [loop.var]: item.value }, path);
      if (!found) return undefined;
      for (const h of found) all.set(h.name, h);
    }
    return items.length ? [...all.values()] : undefined;
  }

  /**
   * `vars_files:` as Ansible reads them: paths relative to the playbook (templates rendered
   * from play and extra vars), each a YAML mapping; a later file wins, and all win over `vars:`.
   * Problems point into the vars file itself, or at the list item when the file is missing.
   */
  private varsFiles(raw: Vars, pi: number): Vars {
    this.loadedVarsFiles = [];
    const out: Vars = {};
    if (!Array.isArray(raw.vars_files)) return out;
    const playVars = isMapping(raw.vars) ? raw.vars : {};
    raw.vars_files.forEach((entry, i) => {
      if (typeof entry !== 'string') return; // the schema says so
      const loc = this.doc.at([pi, 'vars_files', i]);
      let name = entry;
      if (isTemplate(entry)) {
        try {
          name = String(render(entry, { ...playVars, ...this.extra }));
        } catch (err) {
          if (!(err instanceof TemplateError)) throw err;
          this.problems.push({ loc, message: `vars_files: ${err.message}${err.variable ? ` (pass it with -e ${err.variable}=...)` : ''}` });
          return;
        }
      }
      const file = path.resolve(path.dirname(this.file), name);
      let fileDoc: ParsedYaml;
      try {
        if (!existsSync(file)) {
          this.problems.push({ loc, message: `vars_files: no file ${file}` });
          return;
        }
        fileDoc = parseYaml(readSource(file, 'vars file'), file);
      } catch (err) {
        if (err instanceof YamlSyntaxError) this.problems.push(err.problem);
        else if (err instanceof ValidationError) this.problems.push(...err.problems);
        else throw err;
        return;
      }
      const value = fileDoc.value;
      if (value === null || value === undefined) return;
      if (!isMapping(value)) {
        this.problems.push({ loc: fileDoc.at([]), message: `a vars file must be a mapping of names to values, got ${describeValue(value)}` });
        return;
      }
      for (const key of Object.keys(value)) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
          this.problems.push({ loc: fileDoc.keyAt([key]), message: `"${key}" is not a valid variable name (letters, digits and _, not starting with a digit)` });
        }
      }
      this.loadedVarsFiles.push({ doc: fileDoc });
      Object.assign(out, value);
    });
    return out;
  }

  /** Render `hosts:` from play and extra vars, then check every name in it against the inventory. */
  private resolveHosts(pattern: string, playVars: Vars, path: Path): Host[] | undefined {
    const loc = this.doc.at(path);
    let rendered = pattern;
    if (isTemplate(pattern)) {
      try {
        const r = render(pattern, { ...playVars, ...this.extra });
        rendered = Array.isArray(r) ? r.join(':') : String(r);
      } catch (err) {
        if (!(err instanceof TemplateError)) throw err;
        const hint = err.variable ? ` (pass it with -e ${err.variable}=...)` : '';
        this.problems.push({ loc, message: `hosts: ${err.message}${hint}` });
        return undefined;
      }
    }
    const inv = this.opts.inventory;
    const sel = selectHosts(inv, rendered);
    for (const name of sel.unknown) {
      const shown = rendered === pattern ? `"${name}"` : `"${name}" (from ${JSON.stringify(pattern)})`;
      this.problems.push({
        loc,
        message: `hosts: no host or group ${shown} in inventory ${inv.file}${didYouMean(name, [...inv.hosts.keys(), ...inv.groups.keys()])}`,
      });
    }
    if (sel.unknown.length) return undefined;
    if (!sel.hosts.length) {
      this.problems.push({ loc, message: `hosts: pattern "${rendered}" matches no host in inventory ${inv.file}` });
      return undefined;
    }
    return sel.hosts;
  }

  private step(
    raw: Vars,
    where: { id: string; doc: ParsedYaml; path: Path; scope: Scope; inheritedTags: string[]; role?: StepSpec['role'] },
  ): StepSpec | undefined {
    const { doc, path } = where;
    const registry = this.opts.registry;
    const extraKeys = Object.keys(raw).filter((k) => !STEP_KEYS.includes(k));
    const kinds = extraKeys.filter((k) => registry.has(k));
    const unknown = extraKeys.filter((k) => !registry.has(k));

    for (const key of unknown) {
      const instead = STEP_INSTEAD[key];
      if (instead) {
        this.problems.push({ loc: doc.keyAt([...path, key]), message: `"${key}": ${instead}` });
        continue;
      }
      const nearKeyword = closest(key, STEP_KEYS);
      const nearKind = closest(key, registry.kinds());
      const loc = doc.keyAt([...path, key]);
      if (kinds.length || (nearKeyword && !nearKind)) {
        this.problems.push({
          loc,
          message: `unknown key "${key}" in step${nearKeyword ? ` (did you mean "${nearKeyword}"?)` : ''} (allowed: ${STEP_KEYS.join(', ')}, and one step kind)`,
        });
      } else {
        const hint = nearKind ? ` (did you mean "${nearKind}"?)` : ` (known kinds: ${registry.kinds().join(', ')})`;
        this.problems.push({ loc, message: `unknown step kind "${key}"${hint}` });
      }
    }
    if (kinds.length > 1) {
      this.problems.push({
        loc: doc.keyAt([...path, kinds[1]!]),
        message: `step has two kinds, "${kinds[0]}" and "${kinds[1]}": a step does exactly one thing, split it into two steps`,
      });
    }
    if (!kinds.length && !unknown.length) {
      this.problems.push({ loc: doc.at(path), message: `step has no kind: add one of ${registry.kinds().join(', ')}` });
    }
    const kind = kinds[0];

    const loopVar = isMapping(raw.loop_control) && typeof raw.loop_control.loop_var === 'string' ? raw.loop_control.loop_var : 'item';
    const names = new Set(where.scope.names);
    if (where.role) for (const k of [...Object.keys(where.role.defaults), ...Object.keys(where.role.params)]) names.add(k);
    const inner: Scope = { names, registered: where.scope.registered, targets: where.scope.targets, playLoopVar: where.scope.playLoopVar };
    if (raw.loop !== undefined && loopVar === where.scope.playLoopVar) {
      this.problems.push({
        loc: doc.at([...path, 'loop']),
        message: `this step's loop item "${loopVar}" would hide the play's loop item of the same name: set loop_control.loop_var on the step or on the play (e.g. loop_var: group on the play)`,
      });
    }
    if (raw.loop !== undefined) {
      if (typeof raw.loop === 'string' && !isTemplate(raw.loop)) {
        this.problems.push({ loc: doc.at([...path, 'loop']), message: `"loop" must be a list or a "{{ template }}" that renders to one, got the string ${JSON.stringify(raw.loop)}` });
      }
      this.checkTemplates(raw.loop, [...path, 'loop'], doc, where.scope, 'loop');
      inner.names.add(loopVar);
    }

    if (kind !== undefined) {
      const args = raw[kind];
      const validate = stepArgsValidator(kind, registry);
      this.problems.push(
        ...checkAgainst(validate, args, { doc, basePath: [...path, kind], rootLabel: `"${kind}" arguments`, allowTemplates: true }),
      );
      this.checkTemplates(args, [...path, kind], doc, inner, `"${kind}" arguments`);
    }
    for (const key of ['name', 'delegate_to'] as const) this.checkTemplates(raw[key], [...path, key], doc, inner, key);

    const when = raw.when === undefined ? [] : Array.isArray(raw.when) ? raw.when : [raw.when];
    const whenStrings: string[] = [];
    when.forEach((w, i) => {
      const wPath = Array.isArray(raw.when) ? [...path, 'when', i] : [...path, 'when'];
      const text = typeof w === 'boolean' ? String(w) : typeof w === 'string' ? w : undefined;
      if (text === undefined) return;
      whenStrings.push(text);
      try {
        const ast = parseCondition(text);
        this.checkRefs(conditionRefs(ast), doc.at(wPath), inner, `condition ${JSON.stringify(text)}`);
      } catch (err) {
        if (!(err instanceof ConditionError)) throw err;
        this.problems.push({ loc: doc.at(wPath), message: `when: ${err.message}` });
      }
    });

    if (typeof raw.delegate_to === 'string') this.checkDelegate(raw.delegate_to, doc.at([...path, 'delegate_to']), inner);
    if (typeof raw.register === 'string') where.scope.registered.add(raw.register);

    if (kind === undefined) return undefined;
    const explicitTags = tagList(raw.tags);
    const spec: StepSpec = {
      id: where.id,
      kind,
      args: raw[kind],
      tags: [...new Set([...explicitTags, ...where.inheritedTags, kind])],
      when: whenStrings,
      loopVar,
      runOnce: raw.run_once === true,
      retries: typeof raw.retries === 'number' ? raw.retries : 0,
      delayS: typeof raw.delay === 'number' ? raw.delay : 5,
      ignoreErrors: raw.ignore_errors === true,
      loc: doc.at(path),
    };
    if (typeof raw.name === 'string') spec.name = raw.name;
    if (raw.loop !== undefined) spec.loop = raw.loop;
    if (typeof raw.delegate_to === 'string') spec.delegateTo = raw.delegate_to;
    if (typeof raw.timeout === 'number') spec.timeoutS = raw.timeout;
    if (typeof raw.register === 'string') spec.register = raw.register;
    if (where.role) spec.role = where.role;
    if (typeof raw.become === 'boolean') spec.become = raw.become;
    if (typeof raw.become_user === 'string') spec.becomeUser = raw.become_user;
    return spec;
  }

  /** A literal `delegate_to` must name an inventory host; a template is checked when extra vars settle it. */
  private checkDelegate(value: string, loc: SourceLocation, scope: Scope): void {
    let name = value;
    if (isTemplate(value)) {
      try {
        name = String(render(value, this.extra));
      } catch {
        return; // Depends on per-host or loop values: only its references are checked.
      }
    }
    const inv = this.opts.inventory;
    if (inv.hosts.has(name)) return;
    const why = inv.groups.has(name) ? ` ("${name}" is a group; delegate_to takes one host)` : didYouMean(name, inv.hosts.keys());
    this.problems.push({ loc, message: `delegate_to: host "${name}" is not in inventory ${inv.file}${why}` });
    void scope;
  }

  /** Parse every template string inside `value` and check that what it needs is defined. */
  private checkTemplates(value: unknown, path: Path, doc: ParsedYaml, scope: Scope, what: string): void {
    forEachString(value, path, (s, p) => {
      if (!isTemplate(s)) return;
      try {
        const refs = new Set<string>();
        for (const seg of parseTemplate(s)) if ('expr' in seg) for (const r of templateRootRefs(seg.source)) refs.add(r);
        this.checkRefs([...refs], doc.at(p), scope, `${what} ${JSON.stringify(s)}`);
      } catch (err) {
        if (!(err instanceof TemplateError)) throw err;
        this.problems.push({ loc: doc.at(p), message: err.message });
      }
    });
  }

  private checkRefs(refs: string[], loc: SourceLocation, scope: Scope, what: string): void {
    for (const ref of refs) {
      if (scope.names.has(ref) || scope.registered.has(ref)) continue;
      const targets = scope.targets;
      if (targets) {
        const lacking = targets.filter((h) => !Object.prototype.hasOwnProperty.call(h.vars, ref));
        if (!lacking.length) continue;
        if (lacking.length < targets.length) {
          const having = targets.filter((h) => !lacking.includes(h)).map((h) => h.name);
          this.problems.push({
            loc,
            message: `variable "${ref}" in ${what} is not defined for host${lacking.length > 1 ? 's' : ''} ${lacking.map((h) => h.name).join(', ')} (it is for ${having.join(', ')}): define it in the inventory, or give it a default with "| default(...)"`,
          });
          continue;
        }
      } else if ([...this.opts.inventory.hosts.values()].some((h) => Object.prototype.hasOwnProperty.call(h.vars, ref))) {
        continue; // The play's hosts are unknown (already reported): do not pile on.
      }
      const candidates = [...scope.names, ...scope.registered, ...(targets?.flatMap((h) => Object.keys(h.vars)) ?? [])];
      this.problems.push({
        loc,
        message: `undefined variable "${ref}" in ${what}${didYouMean(ref, candidates)} (define it in play vars, the inventory, or pass -e ${ref}=...)`,
      });
    }
  }
}

function templateRootRefs(source: string): string[] {
  return requiredRefs(parseValueExpr(source));
}

function forEachString(value: unknown, path: Path, cb: (s: string, path: Path) => void): void {
  if (typeof value === 'string') cb(value, path);
  else if (Array.isArray(value)) value.forEach((v, i) => forEachString(v, [...path, i], cb));
  else if (isMapping(value)) for (const [k, v] of Object.entries(value)) forEachString(v, [...path, k], cb);
}

function isMapping(v: unknown): v is Vars {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function tagList(v: unknown): string[] {
  if (typeof v === 'string') return v.split(',').map((t) => t.trim()).filter(Boolean);
  if (Array.isArray(v)) return v.filter((t): t is string => typeof t === 'string');
  return [];
}
