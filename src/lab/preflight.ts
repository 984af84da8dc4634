/**
 * Before the lab makes anything: are we root, and is every program it runs installed? A missing
 * one is reported with the exact apt-get line that installs it (the same packages as
 * scripts/install-lab-deps.sh).
 */
import { accessSync, constants, readdirSync } from 'node:fs';
import path from 'node:path';
import { BatonError, ExitCode } from '../util/errors.js';

/** Every Debian package the lab needs, in install order. */
export const LAB_PACKAGES = [
  'iproute2',
  'util-linux',
  'mount',
  'e2fsprogs',
  'openssh-client',
  'openssh-server',
  'iputils-arping',
  'iputils-ping',
  'nfs-ganesha',
  'nfs-ganesha-vfs',
  'nfs-common',
  'rpcbind',
  'libnfs-utils',
  'tgt',
  'libiscsi-bin',
  'openipmi',
  'ipmitool',
  'tcpdump',
  'dbus',
  'fence-agents',
  'psmisc',
  'procps',
] as const;

/** Program → the Debian package that ships it. */
const PROGRAMS: Array<[string, string]> = [
  ['ip', 'iproute2'],
  ['unshare', 'util-linux'],
  ['setsid', 'util-linux'],
  ['losetup', 'mount'],
  ['mount', 'mount'],
  ['mkfs.ext4', 'e2fsprogs'],
  ['ssh', 'openssh-client'],
  ['ssh-keygen', 'openssh-client'],
  ['sshd', 'openssh-server'],
  ['arping', 'iputils-arping'],
  ['ping', 'iputils-ping'],
  ['ganesha.nfsd', 'nfs-ganesha'],
  ['rpc.statd', 'nfs-common'],
  ['sm-notify', 'nfs-common'],
  ['rpcbind', 'rpcbind'],
  ['nfs-cat', 'libnfs-utils'],
  ['nfs-ls', 'libnfs-utils'],
  ['tgtd', 'tgt'],
  ['tgtadm', 'tgt'],
  ['iscsi-inq', 'libiscsi-bin'],
  ['ipmi_sim', 'openipmi'],
  ['ipmitool', 'ipmitool'],
  ['tcpdump', 'tcpdump'],
  ['dbus-daemon', 'dbus'],
  ['dbus-send', 'dbus'],
  ['fence_ipmilan', 'fence-agents'],
  ['fuser', 'psmisc'],
  ['pgrep', 'procps'],
  ['sysctl', 'procps'],
];

const SEARCH_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export function findProgram(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...SEARCH_PATH];
  for (const d of dirs) {
    const p = path.join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Ganesha's VFS backend is a plugin, not a program: look for it where Debian puts it. */
function hasGaneshaVfs(): boolean {
  for (const lib of ['/usr/lib', '/usr/lib64']) {
    let entries: string[] = [];
    try {
      entries = readdirSync(lib);
    } catch {
      continue;
    }
    for (const e of ['', ...entries]) {
      try {
        accessSync(path.join(lib, e, 'ganesha', 'libfsalvfs.so'));
        return true;
      } catch {
        /* next */
      }
    }
  }
  return false;
}

export function missingPackages(): string[] {
  const missing = new Set<string>();
  for (const [prog, pkg] of PROGRAMS) if (!findProgram(prog)) missing.add(pkg);
  if (!hasGaneshaVfs()) missing.add('nfs-ganesha-vfs');
  return LAB_PACKAGES.filter((p) => missing.has(p));
}

export function aptLine(pkgs: readonly string[]): string {
  return `apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;
}

/** Throw before anything is made if the lab cannot run here. */
export function preflight(action: string, opts: { packages?: boolean } = {}): void {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) {
    problems.push(`lab ${action} needs root (it makes network, mount and PID namespaces, loop devices and veths); run it as root`);
  }
  // `down` needs only root and the basics (ip, losetup): it must clear a lab whatever is missing.
  const missing = opts.packages === false ? [] : missingPackages();
  if (missing.length > 0) {
    problems.push(`missing programs for the lab; install them with:\n  ${aptLine(missing)}\n(or run scripts/install-lab-deps.sh)`);
  }
  if (problems.length > 0) {
    throw new BatonError(`${problems.join('\n')}\nbaton: nothing was made`, ExitCode.INVALID);
  }
}
