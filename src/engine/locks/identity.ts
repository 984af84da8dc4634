import { readFileSync } from 'node:fs';
import os from 'node:os';

/**
 * Who this controller is, as written into lock entries. `name` is what an operator reads (the
 * host name, or BATON_CONTROLLER when two laptops share a name); `machine` tells whether a
 * holder's pid can be checked from here: only a holder on this very machine, under the same
 * controller name, is judged by its pid.
 */
export interface ControllerIdentity {
  name: string;
  machine: string;
}

function machineId(): string {
  for (const f of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      const id = readFileSync(f, 'utf8').trim();
      if (id) return id;
    } catch {
      // try the next one
    }
  }
  return `host:${os.hostname()}`;
}

let cached: ControllerIdentity | undefined;

export function controllerIdentity(): ControllerIdentity {
  const name = process.env.BATON_CONTROLLER?.trim() || os.hostname();
  if (!cached || cached.name !== name) cached = { name, machine: machineId() };
  return cached;
}

/** Is pid running on this machine? (EPERM: it runs, as another user.) */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
