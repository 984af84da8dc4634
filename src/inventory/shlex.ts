/**
 * POSIX-mode word splitting as Python's `shlex.split(s, comments=True)` does it, which is how
 * Ansible's INI plugin splits a host line: quotes group and are removed, a backslash escapes
 * outside single quotes (inside double quotes only before `"` and `\`), and `#` outside quotes
 * ends the line — even in the middle of a word.
 */
export class ShlexError extends Error {}

export function shlexSplit(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"') {
        const n = line[i + 1];
        if (n === undefined) throw new ShlexError('no escaped character after "\\"');
        word += n === '"' || n === '\\' ? n : c + n;
        i++;
      } else word += c;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else if (c === '#') {
      break;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\') {
      const n = line[i + 1];
      if (n === undefined) throw new ShlexError('no escaped character after "\\"');
      word += n;
      inWord = true;
      i++;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new ShlexError('no closing quotation');
  if (inWord) words.push(word);
  return words;
}
