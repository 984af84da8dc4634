/**
 * known_hosts, as sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT" describes it:
 *   [@revoked|@cert-authority] hostpatterns keytype base64-key [comment]
 * hostpatterns is a comma list of names, `[name]:port` for a port other than 22,
 * wildcards `*`/`?`, `!` negation, or one hashed name `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`.
 */
import { createHash, createHmac } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface KnownHostEntry {
  file: string;
  line: number;
  marker?: 'revoked' | 'cert-authority';
  patterns: string;
  keyType: string;
  /** The key blob (SSH wire format), as ssh2's hostVerifier hands it to us. */
  key: Buffer;
}

export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (!raw || raw.startsWith('#')) continue;
    const fields = raw.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0]!.startsWith('@')) {
      const m = fields.shift()!;
      if (m === '@revoked') marker = 'revoked';
      else if (m === '@cert-authority') marker = 'cert-authority';
      else continue; // unknown marker: OpenSSH ignores the line too
    }
    const [patterns, keyType, b64] = fields;
    if (!patterns || !keyType || !b64) continue;
    const key = Buffer.from(b64, 'base64');
    if (key.length === 0) continue;
    out.push({ file, line: i + 1, marker, patterns, keyType, key });
  }
  return out;
}

/** Reads each file that exists; a missing file is normal (no known hosts yet). */
export function loadKnownHosts(files: readonly string[]): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    out.push(...parseKnownHosts(text, file));
  }
  return out;
}

/** The name known_hosts stores for a host: `[host]:port` unless the port is 22. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

function hashedMatches(pattern: string, name: string): boolean {
  const parts = pattern.split('|'); // ['', '1', salt, hash]
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = Buffer.from(parts[2]!, 'base64');
  const want = Buffer.from(parts[3]!, 'base64');
  const got = createHmac('sha1', salt).update(name).digest();
  return got.length === want.length && got.equals(want);
}

/** Does a hostpatterns field name this host? A matching `!pattern` wins over any positive match. */
export function patternsMatch(patterns: string, name: string): boolean {
  if (patterns.startsWith('|')) return hashedMatches(patterns, name);
  let matched = false;
  for (const p of patterns.split(',')) {
    if (p.startsWith('!')) {
      if (globToRegExp(p.slice(1)).test(name)) return false;
    } else if (globToRegExp(p).test(name)) {
      matched = true;
    }
  }
  return matched;
}

/** A hashed name as `ssh-keygen -H` writes it. */
export function hashHostName(name: string, salt: Buffer): string {
  const h = createHmac('sha1', salt).update(name).digest();
  return `|1|${salt.toString('base64')}|${h.toString('base64')}`;
}

/** OpenSSH's fingerprint format: `SHA256:` + unpadded base64 of the blob's SHA-256. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The key type is the first string of the wire-format blob (RFC 4253 §6.6). */
export function keyTypeOf(key: Buffer): string {
  if (key.length < 4) return 'unknown';
  const n = key.readUInt32BE(0);
  return key.subarray(4, 4 + n).toString('latin1');
}

export type HostKeyVerdict =
  | { status: 'known'; entry: KnownHostEntry }
  | { status: 'revoked'; entry: KnownHostEntry }
  | { status: 'unknown'; otherTypes: KnownHostEntry[] }
  | { status: 'mismatch'; expected: KnownHostEntry[] };

/**
 * Decide about an offered key. A revoked key refuses wherever it appears; an entry with the
 * same key accepts; an entry for the same host and key type but another key is a change.
 */
export function checkHostKey(entries: readonly KnownHostEntry[], names: readonly string[], key: Buffer): HostKeyVerdict {
  const type = keyTypeOf(key);
  const revoked = entries.find((e) => e.marker === 'revoked' && e.key.equals(key));
  if (revoked) return { status: 'revoked', entry: revoked };
  const forHost = entries.filter((e) => e.marker === undefined && names.some((n) => patternsMatch(e.patterns, n)));
  const same = forHost.find((e) => e.key.equals(key));
  if (same) return { status: 'known', entry: same };
  const sameType = forHost.filter((e) => e.keyType === type);
  if (sameType.length > 0) return { status: 'mismatch', expected: sameType };
  return { status: 'unknown', otherTypes: forHost };
}

export function appendKnownHost(file: string, name: string, key: Buffer): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  let prefix = '';
  try {
    const cur = readFileSync(file);
    if (cur.length > 0 && cur[cur.length - 1] !== 0x0a) prefix = '\n';
  } catch {
    // new file
  }
  appendFileSync(file, `${prefix}${name} ${keyTypeOf(key)} ${key.toString('base64')}\n`, { mode: 0o600 });
}
