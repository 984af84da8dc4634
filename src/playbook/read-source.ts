import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { ValidationError, type SourceLocation } from '../util/errors.js';

/**
 * Reading an input file (playbook, inventory, vars file, role file) with bounds, so that no
 * file can make baton slow, huge or wrong before it is even parsed:
 *  - a size limit, checked with fstat before anything is read, and again while reading (a
 *    file that grows, or a device such as /dev/zero, has no honest size);
 *  - strict UTF-8: invalid bytes are an error at their line:col, never silently turned into
 *    U+FFFD (a mangled IP address or path would otherwise reach a node);
 *  - no NUL byte: YAML forbids it, and it usually means a binary file was given.
 * A UTF-8 byte order mark is accepted and dropped, as editors on Windows write one.
 */
export const MAX_INPUT_BYTES = 8 * 1024 * 1024;

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(n % (1024 * 1024) ? 1 : 0)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(n % 1024 ? 1 : 0)} KiB`;
  return `${n} bytes`;
}

/**
 * The text of `file`, or a ValidationError at file:line:col. `what` names the file in
 * messages ("playbook", "inventory", "vars file").
 */
export function readSource(file: string, what: string, limit: number = MAX_INPUT_BYTES): string {
  const fail = (message: string, loc: SourceLocation = { file, line: 1, col: 1 }): never => {
    throw new ValidationError([{ loc, message }]);
  };
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    return fail(`cannot read ${what}: ${(err as Error).message}`);
  }
  let bytes: Buffer;
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) fail(`cannot read ${what}: ${file} is a directory`);
    const tooBig = (size: string) =>
      `${what} is ${size}, over the ${formatBytes(limit)} limit for an input file: is this the right file?`;
    if (st.size > limit) fail(tooBig(formatBytes(st.size)));
    bytes = readUpTo(fd, limit + 1);
    if (bytes.length > limit) fail(tooBig(`more than ${formatBytes(limit)}`));
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    return fail(`cannot read ${what}: ${(err as Error).message}`);
  } finally {
    closeSync(fd);
  }
  return decodeStrict(bytes, file, what);
}

/** At most `max` bytes: a regular file's size may lie (it grows), a device's always does. */
function readUpTo(fd: number, max: number): Buffer {
  const chunks: Buffer[] = [];
  let total = 0;
  while (total < max) {
    const chunk = Buffer.allocUnsafe(Math.min(1 << 20, max - total));
    const n = readSync(fd, chunk, 0, chunk.length, null);
    if (n === 0) break;
    chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
    total += n;
  }
  return Buffer.concat(chunks, total);
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 text of `bytes`, or a ValidationError naming the first bad byte's line:col. */
export function decodeStrict(bytes: Uint8Array, file: string, what: string): string {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) {
    throw new ValidationError([{ loc: { file, line: 1, col: 1 }, message: `${what} is UTF-16 (little-endian byte order mark): save it as UTF-8` }]);
  }
  if (bytes[0] === 0xfe && bytes[1] === 0xff) {
    throw new ValidationError([{ loc: { file, line: 1, col: 1 }, message: `${what} is UTF-16 (big-endian byte order mark): save it as UTF-8` }]);
  }
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    throw new ValidationError([
      { loc: locationOfByte(bytes, nul, file), message: `NUL byte in ${what}: baton reads text (UTF-8) only; is this a binary file?` },
    ]);
  }
  try {
    return decoder.decode(bytes); // drops a leading UTF-8 BOM (ignoreBOM defaults to false)
  } catch {
    const bad = firstInvalidUtf8(bytes);
    const b = bytes[bad] ?? 0;
    throw new ValidationError([
      {
        loc: locationOfByte(bytes, bad, file),
        message: `invalid UTF-8 in ${what} (byte 0x${b.toString(16).padStart(2, '0')}): save the file as UTF-8 (Latin-1 or Windows-1252 text must be converted, e.g. with iconv -f latin1 -t utf-8)`,
      },
    ]);
  }
}

/**
 * Line and column (in characters, as editors count them) of byte `offset`, the bytes before
 * it being valid UTF-8. A leading BOM does not count as a column.
 */
function locationOfByte(bytes: Uint8Array, offset: number, file: string): SourceLocation {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset; i++) {
    if (bytes[i] === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  if (line === 1 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) lineStart = Math.min(3, offset);
  // Columns count characters: every byte that is not a UTF-8 continuation byte starts one.
  let col = 1;
  for (let i = lineStart; i < offset; i++) if ((bytes[i]! & 0xc0) !== 0x80) col++;
  return { file, line, col };
}

/** Offset of the first byte that makes `bytes` invalid UTF-8 (RFC 3629: no overlongs, surrogates, > U+10FFFF). */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      // The sequence is cut short, or broken: the lead byte is where the character went wrong.
      if (c === undefined) return i;
      if (k === 1 ? c < lo || c > hi : c < 0x80 || c > 0xbf) return i;
    }
    i += need + 1;
  }
  return n;
}
