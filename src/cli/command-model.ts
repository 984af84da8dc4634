/**
 * The command tree as commander holds it, read once into plain data: shell completion and the
 * man page are both made from it, so neither can drift from what `baton --help` says.
 */
import type { Argument, Command, Option } from 'commander';

/** What a value is, for completion: a file, a playbook (file or shipped name), one of a list, or free text. */
export type ValueKind = { kind: 'file' } | { kind: 'playbook' } | { kind: 'choice'; choices: string[] } | { kind: 'text' };

export interface OptionModel {
  flags: string;
  short?: string;
  long?: string;
  description: string;
  /** undefined: a switch that takes no value. */
  value?: ValueKind & { placeholder: string };
  defaultValue?: unknown;
}

export interface ArgumentModel {
  name: string;
  description: string;
  required: boolean;
  variadic: boolean;
  value: ValueKind;
}

export interface CommandModel {
  name: string;
  /** `baton lab up`: the names from the top. */
  path: string[];
  description: string;
  usage: string;
  options: OptionModel[];
  arguments: ArgumentModel[];
  commands: CommandModel[];
  /** What `--help` prints after the options (notes, examples, exit codes), as text. */
  after: string;
}

/** `on | off | status` in an argument's description lists the values it takes. */
function choicesFromDescription(description: string): string[] | undefined {
  const m = /^\s*([\w-]+(?:\s*\|\s*[\w-]+)+)\s*$/.exec(description);
  return m ? m[1]!.split('|').map((s) => s.trim()) : undefined;
}

function valueKind(placeholder: string, choices: readonly string[] | undefined): ValueKind {
  if (choices?.length) return { kind: 'choice', choices: [...choices] };
  const p = placeholder.replace(/[<>[\].]/g, '').toLowerCase();
  if (p === 'playbook') return { kind: 'playbook' };
  if (p === 'file' || p.endsWith('file')) return { kind: 'file' };
  return { kind: 'text' };
}

function optionModel(o: Option): OptionModel {
  const placeholder = /[<[][^>\]]*[>\]]/.exec(o.flags)?.[0];
  return {
    flags: o.flags,
    ...(o.short ? { short: o.short } : {}),
    ...(o.long ? { long: o.long } : {}),
    description: o.description,
    ...(placeholder ? { value: { ...valueKind(placeholder, o.argChoices), placeholder } } : {}),
    ...(o.defaultValue !== undefined && typeof o.defaultValue !== 'object' ? { defaultValue: o.defaultValue } : {}),
  };
}

function argumentModel(a: Argument): ArgumentModel {
  return {
    name: a.name(),
    description: a.description,
    required: a.required,
    variadic: a.variadic,
    value: valueKind(a.name(), a.argChoices ?? choicesFromDescription(a.description)),
  };
}

/**
 * The text `addHelpText('after', …)` gave a command: commander keeps it only as a listener of
 * its `afterHelp` event, so ask the listeners to write it here.
 */
function afterHelp(cmd: Command): string {
  let text = '';
  (cmd as unknown as NodeJS.EventEmitter).emit('afterHelp', { error: false, command: cmd, write: (s: string) => (text += s) });
  return text.replace(/^\n+/, '').trimEnd();
}

export function commandModel(cmd: Command, parents: string[] = []): CommandModel {
  const path = [...parents, cmd.name()];
  const hidden = (o: Option) => (o as Option & { hidden?: boolean }).hidden;
  return {
    name: cmd.name(),
    path,
    description: cmd.description(),
    usage: cmd.usage(),
    options: cmd.options.filter((o) => !hidden(o)).map(optionModel),
    arguments: cmd.registeredArguments.map(argumentModel),
    commands: cmd.commands.map((c) => commandModel(c, path)),
    after: afterHelp(cmd),
  };
}

/** Every command below the root, depth first, the root excluded. */
export function allCommands(root: CommandModel): CommandModel[] {
  return root.commands.flatMap((c) => [c, ...allCommands(c)]);
}
