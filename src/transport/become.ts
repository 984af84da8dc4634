/**
 * `become`: running a command as another user (root by default) through `sudo -n`, in the
 * transport, so that every step kind gets it without knowing it.
 *
 * The command stays an argv: `sudo -n -u USER -- ARGV...` (sudo executes ARGV directly, no
 * shell). `-n` makes sudo fail at once instead of prompting when a password would be needed.
 * sudo resets the environment, so ExecOptions.env travels inside it as
 * `env -- NAME=VALUE... ARGV...` (names checked, values passed as data).
 *
 * Whether and as whom: the inventory's ansible_become / ansible_become_user win over the
 * play's or step's `become` (ExecOptions.become), as connection variables win over keywords
 * in Ansible.
 */
import type { ConnectionSpec } from '../inventory/model.js';
import type { ExecOptions, Transport } from './transport.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface BecomePlan {
  argv: string[];
  env?: Record<string, string>;
  /** The user sudo runs as, when become applies. */
  user?: string;
}

export function becomeUser(spec: Pick<ConnectionSpec, 'become'> | undefined, opts: Pick<ExecOptions, 'become'>): string | undefined {
  const inv = spec?.become;
  const enabled = inv?.enabled ?? (opts.become !== undefined && opts.become !== false);
  if (!enabled) return undefined;
  const asked = opts.become && typeof opts.become === 'object' ? opts.become.user : undefined;
  return inv?.user ?? asked ?? 'root';
}

export function withBecome(argv: string[], opts: ExecOptions, spec?: Pick<ConnectionSpec, 'become'>): BecomePlan {
  const user = becomeUser(spec, opts);
  if (user === undefined) return { argv, env: opts.env };
  if (user.startsWith('-') || user === '') throw new TypeError(`become: invalid user name ${JSON.stringify(user)}`);
  const pairs = Object.entries(opts.env ?? {}).map(([k, v]) => {
    if (!ENV_NAME.test(k)) throw new TypeError(`exec: invalid environment variable name ${JSON.stringify(k)}`);
    return `${k}=${v}`;
  });
  if (pairs.length && argv[0]!.includes('=')) {
    // env(1) would read it as one more assignment rather than the command.
    throw new TypeError(`exec: with become and an environment, the command name cannot contain "=" (${JSON.stringify(argv[0])})`);
  }
  const inner = pairs.length ? ['env', '--', ...pairs, ...argv] : argv;
  return { argv: ['sudo', '-n', '-u', user, '--', ...inner], user };
}

/** sudo's own refusal, explained for whoever reads it at 3 a.m. */
export function explainSudoFailure(stderr: string, user: string, host: string): string {
  if (!/^sudo: /m.test(stderr)) return stderr;
  const hint = /password is required|a terminal is required/.test(stderr)
    ? `sudo on ${host} wants a password, and baton runs sudo -n (never prompts): give the connecting user a NOPASSWD rule for the commands baton runs as ${user}`
    : `baton ran this through \`sudo -n -u ${user} --\` on ${host} (become); sudo refused it`;
  return `${stderr}${stderr.endsWith('\n') ? '' : '\n'}(${hint})\n`;
}

/**
 * A view of `t` whose every command asks for `become` (a play's or step's keyword), so the
 * engine can hand a step its transport and no step kind has to know about become. A `become`
 * the caller passes itself still wins; closing the view closes nothing (the pool owns `t`).
 */
export function withBecomeKeyword(t: Transport, become: ExecOptions['become'] | undefined): Transport {
  if (become === undefined) return t;
  // One view per connection and become, the same for every step: what a step learned about the
  // node as that user (facts/remembered.ts) is there for the next.
  let views = viewsOf.get(t);
  if (!views) viewsOf.set(t, (views = new Map()));
  const key = JSON.stringify(become);
  let view = views.get(key);
  if (!view) {
    view = {
      host: t.host,
      kind: t.kind,
      connect: () => t.connect(),
      exec: (argv, opts = {}) => t.exec(argv, { become, ...opts }),
      close: async () => {},
    };
    views.set(key, view);
  }
  return view;
}

const viewsOf = new WeakMap<Transport, Map<string, Transport>>();
