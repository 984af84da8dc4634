/** Where something was written: 1-based line and column, as editors count them. */
export interface SourceLocation {
  file: string;
  line: number;
  col: number;
}

export function formatLocation(loc: SourceLocation): string {
  return `${loc.file}:${loc.line}:${loc.col}`;
}

/** One thing wrong with the input. */
export interface Problem {
  loc: SourceLocation;
  message: string;
}

/** Exit codes of `run`, `undo`, `validate` (see README). */
export const ExitCode = {
  OK: 0,
  FAILED_ROLLED_BACK: 1,
  INVALID: 2,
  FAILED_NOT_ROLLED_BACK: 3,
  UNREACHABLE: 4,
  LOCKED: 5,
  WOULD_CHANGE: 6,
} as const;

/** An error baton understands, carrying the exit code the CLI ends with. */
export class BatonError extends Error {
  /** The run it stopped, when it stopped one (the --json summary names it). */
  runId?: string;
  constructor(
    message: string,
    readonly exitCode: number = ExitCode.FAILED_NOT_ROLLED_BACK,
  ) {
    super(message);
    this.name = 'BatonError';
  }
}

/** The input (playbook, inventory, vars) is wrong. Nothing was touched. All problems at once. */
export class ValidationError extends BatonError {
  constructor(readonly problems: Problem[]) {
    super(problems.map((p) => `${formatLocation(p.loc)}: ${p.message}`).join('\n'), ExitCode.INVALID);
    this.name = 'ValidationError';
  }
}
