/**
 * NFS-Ganesha provider: an export is an EXPORT block in a file of its own on the node, loaded
 * and dropped at run time over D-Bus (AddExport / RemoveExport on ExportMgr), so no other export
 * and no client of this server is disturbed.
 *
 * Where the file lives (conf_dir, default /run/ganesha/baton): under /run on purpose. /run is
 * emptied at boot, and Ganesha never reads these files on its own (they are not %included), so a
 * node that reboots or is fenced comes back exporting nothing; only a takeover re-exports.
 * A file under /etc/ganesha would survive and tempt an %include that re-exports a moved volume
 * on the old node at boot: the split brain failover exists to prevent.
 */
import { batchedOk, CommandFailedError, StepRefusedError, type StepContext } from '../contract.js';
import { runBatch, type BatchCommand } from '../../transport/batch.js';
import type { ExecResult } from '../../transport/transport.js';
import {
  GRACE_RELEASE_IP,
  GRACE_TAKE_IP,
  ganeshaAddExportArgv,
  ganeshaGraceArgv,
  ganeshaRemoveExportArgv,
  ganeshaShowExportsArgv,
  parseShowExports,
  parseAddExportReply,
  parseGraceReply,
  readGaneshaExports,
  readGaneshaScope,
} from '../../facts/nfs.js';
import { DEFAULT_GANESHA_CONF_DIR, withDefaults, type ExportArgs, type ExportObserved, type ExportProvider } from './types.js';

type GaneshaObserved = Extract<ExportObserved, { provider: 'ganesha' }>;

export function exportIdOf(a: ExportArgs): number {
  const id = Number(a.export_id);
  if (!Number.isInteger(id) || id < 1 || id > 65535) {
    throw new StepRefusedError(`export: provider ganesha needs export_id, an integer 1..65535 (got ${JSON.stringify(a.export_id)})`);
  }
  return id;
}

export function confPathOf(a: ExportArgs): string {
  return `${(a.conf_dir ?? DEFAULT_GANESHA_CONF_DIR).replace(/\/+$/, '')}/export-${exportIdOf(a)}.conf`;
}

/** Ganesha's Filesystem_Id is `major.minor`; an integer fsid N becomes `N.0`. */
export function ganeshaFsid(fsid: number | string): string {
  const s = String(fsid);
  if (/^\d+$/.test(s)) return `${s}.0`;
  if (/^\d+\.\d+$/.test(s)) return s;
  throw new StepRefusedError(`export: ganesha needs fsid as an integer or "major.minor" (got ${JSON.stringify(fsid)})`);
}

function quoted(name: string, value: string): string {
  // Ganesha config strings have no escapes: refuse what would end the string or the line.
  if (/["\n\r\\]/.test(value)) throw new StepRefusedError(`export: ${name} ${JSON.stringify(value)} contains a quote, backslash or newline`);
  return `"${value}"`;
}

/** Ganesha wants clients as bare tokens ("Expected a client, got a double quoted string"). */
function clientToken(c: string): string {
  if (!/^[A-Za-z0-9.:/*?@_-]+$/.test(c)) throw new StepRefusedError(`export: client ${JSON.stringify(c)} is not a host, address, CIDR, @netgroup or wildcard`);
  return c;
}

const SQUASH: Record<string, string> = { root_squash: 'Root_Squash', no_root_squash: 'No_Root_Squash', all_squash: 'All_Squash' };

/** The EXPORT block written to the node. Access is granted per CLIENT; the export itself grants none. */
export function ganeshaExportBlock(raw: ExportArgs): string {
  const a = withDefaults(raw);
  if (a.fsid === undefined) throw new StepRefusedError('export: fsid is required (the same on every node) so filehandles survive a move');
  const clients = a.clients
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((c) => clientToken(c))
    .join(', ');
  return [
    '# Written by baton (export step), loaded over D-Bus with AddExport. Not read at boot.',
    'EXPORT {',
    `    Export_Id = ${exportIdOf(a)};`,
    `    Path = ${quoted('path', a.path)};`,
    `    Pseudo = ${quoted('pseudo', a.pseudo ?? a.path)};`,
    `    Filesystem_Id = ${ganeshaFsid(a.fsid)};`,
    '    Protocols = 3, 4;',
    '    SecType = sys;',
    '    Access_Type = None;',
    `    Squash = ${SQUASH[a.squash]};`,
    '    CLIENT {',
    `        Clients = ${clients};`,
    `        Access_Type = ${a.access === 'ro' ? 'RO' : 'RW'};`,
    `        Squash = ${SQUASH[a.squash]};`,
    '    }',
    '    FSAL { Name = VFS; }',
    '}',
    '',
  ].join('\n');
}

/** Write stdin to FILE atomically, creating DIR: constant script, paths as positional data. */
// The block travels as an argument, not on stdin: a command without stdin goes through the
// node's command agent (src/transport/ssh-agent-mux.ts) instead of an SSH channel of its own, on
// the clients' critical path. It holds no secret (it is the export's config, shown in the plan).
export const WRITE_FILE_SCRIPT = 'umask 077 && { [ -d "$1" ] || mkdir -p -- "$1"; } && printf %s "$3" > "$2.baton-new" && mv -f -- "$2.baton-new" "$2"';
export const writeConfArgv = (a: ExportArgs): string[] => {
  const file = confPathOf(a);
  return ['sh', '-c', WRITE_FILE_SCRIPT, 'baton-export-conf', file.slice(0, file.lastIndexOf('/')) || '/', file, ganeshaExportBlock(a)];
};

/** The reply to a grace event, said at -v; a Ganesha without the admin interface only gets no grace. */
function logGrace(ctx: StepContext, event: number, vip: string, r: ExecResult | undefined): void {
  const what = event === GRACE_TAKE_IP ? 'take' : 'release';
  if (r && r.code === 0) {
    const g = parseGraceReply(r.stdout);
    // With `Graceless = true` Ganesha answers "Started grace period" yet logs "skipping GRACE".
    ctx.log(`ganesha grace ${event}:${vip} (${what} IP): ${g.ok ? 'accepted' : 'refused'}${g.message ? ` — ${g.message}` : ''}`);
  } else if (r) {
    ctx.log(`ganesha grace ${event}:${vip} (${what} IP) not supported here, continuing: ${r.stderr.trim() || `exit ${r.code}`}`);
  }
}

/**
 * Write the EXPORT block, AddExport it, and start the grace period of a taken IP: one exec.
 * An export already active under the id is what we want (a re-run after a crash).
 */
async function addExport(ctx: StepContext, a: ExportArgs, withGrace: boolean): Promise<GaneshaObserved | undefined> {
  const id = exportIdOf(a);
  const cmds: BatchCommand[] = [{ argv: writeConfArgv(a) }, { argv: ganeshaAddExportArgv(confPathOf(a), id), mayFail: true }];
  const grace = withGrace && a.vip ? ganeshaGraceArgv(GRACE_TAKE_IP, a.vip) : undefined;
  if (grace) cmds.push({ argv: grace, mayFail: true });
  // The step's probe last, in the same exec: one round trip less.
  cmds.push({ argv: ganeshaShowExportsArgv(), mayFail: true });
  const results = await runBatch((argv, o) => ctx.run(argv, o), cmds);
  const [write, add] = results;
  const graced = grace ? results[2] : undefined;
  const shown = observedFrom(a, results[cmds.length - 1]);
  batchedOk(ctx.transport.host, write, writeConfArgv(a));
  if (!add) batchedOk(ctx.transport.host, add, ganeshaAddExportArgv(confPathOf(a), id));
  if (add.code !== 0 && !/already active/i.test(add.stderr)) throw new CommandFailedError(ctx.transport.host, add);
  if (grace) logGrace(ctx, GRACE_TAKE_IP, a.vip!, graced);
  if (add.code !== 0) return shown;
  const reply = parseAddExportReply(add.stdout);
  if (reply.errors.length) {
    throw new Error(
      `on ${ctx.transport.host}: Ganesha added export ${id} from ${confPathOf(a)} but reported config errors: ${reply.errors.join('; ')}. ` +
        'The export may not be what was asked; it will be rolled back. Check the Ganesha version against the EXPORT block baton writes.',
    );
  }
  return shown;
}

/** The probe's reading of a ShowExports reply run in a batch (undefined: it did not answer; the engine probes). */
function observedFrom(a: ExportArgs, r: ExecResult | undefined): GaneshaObserved | undefined {
  if (r?.code !== 0) return undefined;
  const id = exportIdOf(a);
  const found = parseShowExports(r.stdout).find((e) => e.id === id);
  return { provider: 'ganesha', exportId: id, activePath: found?.path ?? null };
}

/** RemoveExport, drop the file, and start the grace period of a released IP: one exec. */
async function removeExport(ctx: StepContext, a: ExportArgs, withGrace: boolean): Promise<GaneshaObserved | undefined> {
  const id = exportIdOf(a);
  const cmds: BatchCommand[] = [{ argv: ganeshaRemoveExportArgv(id), mayFail: true }, { argv: ['rm', '-f', '--', confPathOf(a)] }];
  const grace = withGrace && a.vip ? ganeshaGraceArgv(GRACE_RELEASE_IP, a.vip) : undefined;
  if (grace) cmds.push({ argv: grace, mayFail: true });
  cmds.push({ argv: ganeshaShowExportsArgv(), mayFail: true });
  const results = await runBatch((argv, o) => ctx.run(argv, o), cmds);
  const [removed, rm] = results;
  const graced = grace ? results[2] : undefined;
  if (!removed) batchedOk(ctx.transport.host, removed, ganeshaRemoveExportArgv(id));
  if (removed.code !== 0 && !/Export id not found/i.test(removed.stderr)) throw new CommandFailedError(ctx.transport.host, removed);
  batchedOk(ctx.transport.host, rm, ['rm', '-f', '--', confPathOf(a)]);
  if (grace) logGrace(ctx, GRACE_RELEASE_IP, a.vip!, graced);
  return observedFrom(a, results[cmds.length - 1]);
}


export const ganeshaProvider: ExportProvider = {
  async probe(ctx, a) {
    const id = exportIdOf(a);
    const found = (await readGaneshaExports(ctx)).find((e) => e.id === id);
    return { provider: 'ganesha', exportId: id, activePath: found?.path ?? null };
  },

  exported: (o, a) => (o as GaneshaObserved).activePath === a.path,
  absent: (o) => (o as GaneshaObserved).activePath === null,

  add: (ctx, a) => addExport(ctx, a, true),

  remove: (ctx, a) => removeExport(ctx, a, true),

  async restore(ctx, a, before) {
    const b = before as GaneshaObserved;
    const now = (await this.probe(ctx, a)) as GaneshaObserved;
    // An apply that died between writing the file and AddExport leaves only the file behind.
    if (b.activePath === null && now.activePath === null) {
      await ctx.run(['rm', '-f', '--', confPathOf(a)]);
      return;
    }
    if (b.activePath === now.activePath) return;
    if (b.activePath === null && now.activePath === a.path) {
      await removeExport(ctx, a, false);
      return;
    }
    if (b.activePath === a.path && now.activePath === null) {
      await addExport(ctx, a, false);
      return;
    }
    // Someone else's export holds the id now, or held it then: not ours to change.
    throw new StepRefusedError(
      `on ${ctx.transport.host}: Ganesha Export_Id ${b.exportId} serves ${now.activePath ?? 'nothing'} and served ${b.activePath ?? 'nothing'} before; ` +
        `baton only manages ${a.path} under that id, so it leaves it alone. Check with: ${['dbus-send', '--system', '--print-reply', '--dest=org.ganesha.nfsd', '/org/ganesha/nfsd/ExportMgr', 'org.ganesha.nfsd.exportmgr.ShowExports'].join(' ')}`,
    );
  },

  async scope(ctx) {
    const s = await readGaneshaScope(ctx);
    return { scope: s.scope, source: `Server_Scope in NFSv4 {} of ${s.confPath || 'the running ganesha.nfsd config'}` };
  },

  commands(a, direction) {
    const id = exportIdOf(a);
    if (direction === 'export') {
      return [writeConfArgv(a), ganeshaAddExportArgv(confPathOf(a), id), ...(a.vip ? [ganeshaGraceArgv(GRACE_TAKE_IP, a.vip)] : [])];
    }
    return [ganeshaRemoveExportArgv(id), ['rm', '-f', '--', confPathOf(a)], ...(a.vip ? [ganeshaGraceArgv(GRACE_RELEASE_IP, a.vip)] : [])];
  },
};
