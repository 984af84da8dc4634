/**
 * What `--probe` accepts, checked before anything runs (a typo is exit 2, not a failed drill):
 *   nfs://HOST/PATH[?version=3|4]  read PATH with libnfs's nfs-cat (no kernel NFS client needed)
 *   tcp://HOST:PORT                open a TCP connection
 *   iscsi://HOST[:PORT]/IQN/LUN[?lba=N&blocks=M]  read blocks with baton's iSCSI initiator
 */
import { BatonError, ExitCode } from '../util/errors.js';

export type ProbeSpec =
  | { kind: 'nfs'; label: string; url: string; host: string; path: string; version?: 3 | 4 }
  | { kind: 'tcp'; label: string; host: string; port: number }
  | { kind: 'iscsi'; label: string; host: string; port: number; iqn: string; lun: number; lba: number; blocks: number };

export function parseProbeSpec(text: string): ProbeSpec {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new BatonError(`--probe ${text}: not a URL; use nfs://HOST/PATH?version=4, tcp://HOST:PORT or iscsi://HOST/IQN/LUN`, ExitCode.INVALID);
  }
  // Bracketed IPv6 literals keep their brackets in URL.hostname.
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw new BatonError(`--probe ${text}: no host`, ExitCode.INVALID);
  if (u.protocol === 'tcp:') {
    const port = Number(u.port);
    if (!u.port || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new BatonError(`--probe ${text}: a TCP probe needs a port (tcp://HOST:PORT)`, ExitCode.INVALID);
    }
    return { kind: 'tcp', label: text, host, port };
  }
  if (u.protocol === 'nfs:') {
    const path = decodeURIComponent(u.pathname);
    if (!path || path === '/' || path.endsWith('/')) {
      throw new BatonError(`--probe ${text}: an NFS probe reads a file: nfs://HOST/PATH/FILE`, ExitCode.INVALID);
    }
    for (const k of u.searchParams.keys()) {
      if (k !== 'version') throw new BatonError(`--probe ${text}: unknown parameter "${k}" (only version=3|4)`, ExitCode.INVALID);
    }
    const v = u.searchParams.get('version');
    if (v !== null && v !== '3' && v !== '4') throw new BatonError(`--probe ${text}: version must be 3 or 4`, ExitCode.INVALID);
    return { kind: 'nfs', label: text, url: text, host, path, ...(v ? { version: Number(v) as 3 | 4 } : {}) };
  }
  if (u.protocol === 'iscsi:') return parseIscsiProbe(text, u, host);
  throw new BatonError(`--probe ${text}: unknown scheme "${u.protocol}"; use nfs://, tcp:// or iscsi://`, ExitCode.INVALID);
}

/** Run a command inside a network namespace (a lab client's), else as is. */
export function inNetns(argv: string[], netns?: string): string[] {
  return netns ? ['ip', 'netns', 'exec', netns, ...argv] : argv;
}

/** libnfs's nfs-cat takes the URL as given: the version parameter is libnfs's own URL syntax. */
export function nfsCatArgv(spec: Extract<ProbeSpec, { kind: 'nfs' }>, netns?: string): string[] {
  return inNetns(['nfs-cat', spec.url], netns);
}

/** iscsi://HOST[:PORT]/IQN/LUN[?lba=N&blocks=M]: blocks 0..7 of the LUN by default. */
function parseIscsiProbe(text: string, u: URL, host: string): ProbeSpec {
  const bad = (why: string) => new BatonError(`--probe ${text}: ${why}; use iscsi://HOST[:PORT]/IQN/LUN[?lba=N&blocks=M]`, ExitCode.INVALID);
  const parts = decodeURIComponent(u.pathname).split('/').filter(Boolean);
  if (parts.length !== 2) throw bad('an iSCSI probe names the target and the LUN');
  const [iqn, lunText] = parts as [string, string];
  if (!/^(iqn\.|eui\.|naa\.)/i.test(iqn)) throw bad(`"${iqn}" is not a target name (iqn.…, eui.…, naa.…)`);
  const num = (v: string | null, what: string, dflt: number, min: number, max: number): number => {
    if (v === null) return dflt;
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw bad(`${what} must be a whole number from ${min} to ${max}`);
    return Number(v);
  };
  for (const k of u.searchParams.keys()) if (k !== 'lba' && k !== 'blocks') throw bad(`unknown parameter "${k}" (lba, blocks)`);
  const port = num(u.port || null, 'the port', 3260, 1, 65535);
  const lun = num(lunText, 'the LUN', 0, 0, 16383);
  return { kind: 'iscsi', label: text, host, port, iqn, lun, lba: num(u.searchParams.get('lba'), 'lba', 0, 0, Number.MAX_SAFE_INTEGER), blocks: num(u.searchParams.get('blocks'), 'blocks', 8, 1, 2048) };
}
