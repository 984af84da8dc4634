/**
 * baton(1), in roff, from the command definitions (see command-model.ts). `npm pack` writes it
 * to dist/man/baton.1 (scripts/gen-man.mjs), which `npm install -g` links into man1.
 */
import { allCommands, type CommandModel, type OptionModel } from './command-model.js';
import { packageVersion } from './package-info.js';

/** Text safe in roff: backslashes escaped, no line read as a request, dashes as minus signs. */
function roff(s: string): string {
  return s
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .split('\n')
    .map((l) => (/^[.']/.test(l) ? `\\&${l}` : l))
    .join('\n');
}

const bold = (s: string) => `\\fB${roff(s)}\\fR`;

function optionLines(o: OptionModel): string[] {
  const names = [o.short, o.long].filter(Boolean).map((n) => bold(n!)).join(', ');
  const value = o.value ? ` \\fI${roff(o.value.placeholder.replace(/[<>]/g, ''))}\\fR` : '';
  const dflt = o.defaultValue !== undefined && o.defaultValue !== false ? ` (default: ${roff(String(o.defaultValue))})` : '';
  return ['.TP', `${names}${value}`, `${roff(o.description)}${dflt}`];
}

function commandSection(c: CommandModel): string[] {
  const lines = ['.SS ' + roff(`${c.path.join(' ')} ${c.usage}`.trim()), roff(c.description)];
  for (const a of c.arguments) {
    if (a.description) lines.push('.TP', `\\fI${roff(a.name)}\\fR${a.variadic ? '...' : ''}`, roff(a.description));
  }
  for (const o of c.options) lines.push(...optionLines(o));
  // The notes --help prints after the options (examples, exit codes), as written there.
  if (c.after) lines.push('.PP', '.nf', roff(c.after), '.fi');
  return lines;
}

export function manPage(root: CommandModel, date = new Date()): string {
  const day = date.toISOString().slice(0, 10);
  const top = root.commands.map((c) => `.B baton ${roff(c.name)}\n${roff(c.usage)}\n.br`);
  return [
    `.TH BATON 1 "${day}" "baton ${roff(packageVersion())}" "User Commands"`,
    '.SH NAME',
    `baton \\- ${roff(root.description)}`,
    '.SH SYNOPSIS',
    ...top,
    '.SH DESCRIPTION',
    roff(
      'baton moves a storage service (the volume, its mount, the NFS exports and the virtual IP in front of them) from one node to another by running a YAML playbook of idempotent, reversible, tagged steps over SSH. ' +
        'Every run is validated before any node is contacted, shows its plan, is journaled, rolls back on failure and can be undone with baton undo RUN.',
    ),
    '.PP',
    roff('A playbook is given as a path, or as the name of a shipped playbook (nfs-switchover, nfs-failover, ...) when no such file exists in the current directory.'),
    '.SH OPTIONS',
    ...root.options.flatMap(optionLines),
    ...(root.after ? ['.PP', roff(root.after)] : []),
    '.SH COMMANDS',
    ...allCommands(root).flatMap(commandSection),
    '.SH ENVIRONMENT',
    '.TP',
    bold('BATON_STATE_DIR'),
    roff('where journals (runs/RUN.jsonl) and local locks are kept; default $XDG_STATE_HOME/baton, else ~/.local/state/baton'),
    '.TP',
    bold('BATON_PERSIST'),
    roff('seconds the keeper holds SSH connections for baton check (as --persist)'),
    '.TP',
    bold('CI'),
    roff('when set, progress is printed as one line per event instead of a live tree'),
    '.SH FILES',
    '.TP',
    roff('~/.ssh/config, ~/.ssh/known_hosts'),
    roff('read for host names, users, ports, keys and host keys (checked strictly)'),
    '.SH EXAMPLES',
    '.nf',
    roff('baton plan nfs-switchover -i inventory.yml -e from=nas1 -e to=nas2'),
    roff('baton run  nfs-switchover -i inventory.yml -e from=nas1 -e to=nas2'),
    roff('baton undo 20261122T184607Z-0ad6aa'),
    roff('baton check nfs-health -i inventory.yml'),
    roff('source <(baton completion bash)'),
    '.fi',
    '.SH SEE ALSO',
    roff('ssh_config(5), the README shipped with the package'),
    '',
  ].join('\n');
}
