/**
 * POSIX shell quoting. An SSH exec request is one string that the remote login shell
 * parses, so every argument is wrapped in single quotes: inside them POSIX sh gives no
 * character a special meaning (XCU 2.2.2), and the only thing to escape is the single
 * quote itself, written as `'\''` (close, escaped quote, reopen).
 *
 * Every word is quoted, even plain ones: a bare `if`, `!` or `A=b` in command position
 * would be a reserved word or an assignment, and a bare word can be an alias.
 */

export function quoteArg(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function quoteArgv(argv: readonly string[]): string {
  return argv.map(quoteArg).join(' ');
}
