import { quoteArg } from '../transport/quote.js';

/** An argv as a person would type it: plain words bare, anything else quoted (for output only). */
export function displayArgv(argv: string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : quoteArg(a))).join(' ');
}
