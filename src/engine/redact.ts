/**
 * Secrets never reach the terminal or the journal. A secret is any var whose name says so
 * (password, secret, token, passphrase) and any step argument its kind marks secret; every
 * text baton prints goes through `redact`, and journaled arguments have secret fields replaced.
 */
// Fence agents' and clouds' names too: fence_aws's secret_key/access_key, an SNMP PDU's community.
const SECRET_NAME = /(pass(word|wd|phrase)?|secret|token|api_?key|secret_?key|access_?key|private_?key|community)$/i;
export const MASK = '********';

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

export class Redactor {
  private readonly values = new Set<string>();

  /** Remember every secret-named value found in these vars (deeply). */
  addVars(vars: unknown, nameHint = ''): void {
    if (typeof vars === 'string' || typeof vars === 'number') {
      if (isSecretName(nameHint)) this.add(String(vars));
      return;
    }
    if (Array.isArray(vars)) vars.forEach((v) => this.addVars(v, nameHint));
    else if (vars && typeof vars === 'object') for (const [k, v] of Object.entries(vars)) this.addVars(v, k);
  }

  /**
   * Every secret an inventory holds: vars named like secrets on every host, every value that came
   * out of Ansible Vault whatever its name, and every var the vault filled.
   */
  addInventory(inventory: { hosts: Map<string, { vars: Record<string, unknown> }>; secretVars?: Set<string>; secretValues?: Set<string> }): void {
    for (const h of inventory.hosts.values()) {
      this.addVars(h.vars);
      for (const name of inventory.secretVars ?? []) {
        const v = h.vars[name];
        if (typeof v === 'string' || typeof v === 'number') this.add(String(v));
      }
    }
    for (const v of inventory.secretValues ?? []) this.add(v);
  }

  add(value: string): void {
    // One- or two-character "secrets" would mask half the output and protect nothing.
    if (value.length >= 3) this.values.add(value);
  }

  private maskValues(v: unknown, at: string): unknown {
    if (typeof v === 'string') return [...this.values].some((s) => v.includes(s)) ? { $secret: at || '(value)' } : v;
    if (Array.isArray(v)) return v.map((x, i) => this.maskValues(x, `${at}[${i}]`));
    if (v && typeof v === 'object') {
      // An argument whose name says secret (a fence agent's `secret_key` option) is masked whatever its value.
      return Object.fromEntries(
        Object.entries(v).map(([k, x]) => {
          const here = at ? `${at}.${k}` : k;
          if (typeof x !== 'string' || !x || !isSecretName(k)) return [k, this.maskValues(x, here)];
          this.add(x); // and out of every message from now on
          return [k, { $secret: here }];
        }),
      );
    }
    return v;
  }

  redact(text: string): string {
    let out = text;
    for (const v of this.values) out = out.split(v).join(MASK);
    return out;
  }

  /**
   * A copy of args for the journal: the given dotted paths masked, and so is any string that
   * holds a known secret value (a password templated into a command's argv). Masked places
   * read `{"$secret": PATH}`; undo renders them again from the inventory (unmaskArgs).
   */
  maskArgs(args: unknown, secretPaths: string[] = []): unknown {
    if (!args || typeof args !== 'object') return args;
    for (const p of secretPaths) {
      const value = p.split('.').reduce<unknown>((node, k) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[k] : undefined), args);
      if (typeof value === 'string') this.add(value);
    }
    const copy = this.maskValues(structuredClone(args), '');
    // Secrets too short to be searched for (add() ignores them) are still masked by path.
    for (const p of secretPaths) {
      const keys = p.split('.');
      const parent = keys.slice(0, -1).reduce<unknown>((node, k) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[k] : undefined), copy);
      const last = keys[keys.length - 1]!;
      if (parent && typeof parent === 'object' && last in parent) (parent as Record<string, unknown>)[last] = { $secret: p };
    }
    return copy;
  }
}

/** Put secrets back into journaled args from freshly rendered ones (undo re-reads them from the inventory). */
export function unmaskArgs(journaled: unknown, fresh: unknown): unknown {
  if (journaled && typeof journaled === 'object' && !Array.isArray(journaled)) {
    const j = journaled as Record<string, unknown>;
    if (typeof j.$secret === 'string' && Object.keys(j).length === 1) return fresh;
    const f = (fresh && typeof fresh === 'object' ? fresh : {}) as Record<string, unknown>;
    return Object.fromEntries(Object.entries(j).map(([k, v]) => [k, unmaskArgs(v, f[k])]));
  }
  if (Array.isArray(journaled)) return journaled.map((v, i) => unmaskArgs(v, Array.isArray(fresh) ? fresh[i] : undefined));
  return journaled;
}

export function hasMaskedArgs(args: unknown): boolean {
  return JSON.stringify(args ?? null).includes('"$secret"');
}
