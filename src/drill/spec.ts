/**
 * What `--probe` accepts, checked before anything runs (a typo is exit 2, not a failed drill):
 *   nfs://HOST/PATH[?version=3|4]  read PATH with libnfs's nfs-cat (no kernel NFS client needed)
 *   tcp://HOST:PORT                open a TCP connection
 */
import { BatonError, ExitCode } from '../util/errors.js';

export type ProbeSpec =
  | { kind: 'nfs'; label: string; url: string; host: string; path: string; version?: 3 | 4 }
  | { kind: 'tcp'; label: string; host: string; port: number };

export function parseProbeSpec(text: string): ProbeSpec {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new BatonError(`--probe ${text}: not a URL; use nfs://HOST/PATH?version=4 or tcp://HOST:PORT`, ExitCode.INVALID);
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
  throw new BatonError(`--probe ${text}: unknown scheme "${u.protocol}"; use nfs:// or tcp://`, ExitCode.INVALID);
}

/** Run a command inside a network namespace (a lab client's), else as is. */
export function inNetns(argv: string[], netns?: string): string[] {
  return netns ? ['ip', 'netns', 'exec', netns, ...argv] : argv;
}

/** libnfs's nfs-cat takes the URL as given: the version parameter is libnfs's own URL syntax. */
export function nfsCatArgv(spec: Extract<ProbeSpec, { kind: 'nfs' }>, netns?: string): string[] {
  return inNetns(['nfs-cat', spec.url], netns);
}
