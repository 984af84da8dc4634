import type { Transport } from '../transport/transport.js';

/**
 * Facts that cannot change while baton stays connected to a node — which arping it has, say —
 * remembered per connection, so that the eighth group raised on a node does not ask again what
 * the first one learned. Only what a run cannot change belongs here: anything a step changes is
 * probed each time (DESIGN.md: verified by probing).
 */
const byConnection = new WeakMap<Transport, Map<string, unknown>>();

export function recalled<T>(transport: Transport, key: string): T | undefined {
  return byConnection.get(transport)?.get(key) as T | undefined;
}

export function remember<T>(transport: Transport, key: string, value: T): void {
  let facts = byConnection.get(transport);
  if (!facts) byConnection.set(transport, (facts = new Map()));
  facts.set(key, value);
}
