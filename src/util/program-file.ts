import { accessSync, closeSync, constants, openSync, readSync } from 'node:fs';

/**
 * Whether a file is a program to run: executable, and starting with `#!` or an ELF header. The
 * execute bit alone says little (files on CIFS or vboxsf shares, or checked out on Windows,
 * carry it), and a file without either header would be run by /bin/sh (execvp's fallback), so
 * that a YAML inventory or a password would run as shell code on the controller.
 */
export function isProgram(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
  } catch {
    return false;
  }
  return hasProgramHeader(file);
}

/** Whether the file starts with `#!` or `\x7fELF` (false when it cannot be read). */
export function hasProgramHeader(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const head = Buffer.alloc(4);
    const n = readSync(fd, head, 0, 4, 0);
    return (n >= 2 && head[0] === 0x23 && head[1] === 0x21) || (n === 4 && head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46])));
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Whether the file has its execute bit (for the user baton runs as). */
export function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
