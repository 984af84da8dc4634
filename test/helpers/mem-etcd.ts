/**
 * Enough of etcd, in memory, for the watcher's decision log and orphan finder in unit tests:
 * put (optionally under a lease), range by key or prefix (keys only on request), get, delete. `onGet`
 * lets a test change the store the moment a key is read (a run ending mid-scan).
 */
export class MemEtcd {
  readonly endpoints = ['http://fake:2379'];
  readonly kv = new Map<string, { value: string; lease: string }>();
  onGet?: (key: string) => void;

  /** The store changes at once (before the returned promise settles), as a test's hook needs. */
  async put(key: string, value: string, o: { lease?: string } = {}): Promise<number> {
    this.kv.set(key, { value, lease: o.lease ?? '0' });
    return 1;
  }

  async range(key: string, o: { prefix?: boolean; keysOnly?: boolean } = {}) {
    return [...this.kv.keys()]
      .filter((k) => (o.prefix ? k.startsWith(key) : k === key))
      .sort()
      .map((k) => ({ key: k, value: o.keysOnly ? '' : this.kv.get(k)!.value, createRevision: 1, modRevision: 1, version: 1, lease: this.kv.get(k)!.lease }));
  }

  async delete(key: string, o: { prefix?: boolean } = {}): Promise<void> {
    for (const k of [...this.kv.keys()]) if (o.prefix ? k.startsWith(key) : k === key) this.kv.delete(k);
  }

  async get(key: string) {
    this.onGet?.(key);
    return (await this.range(key))[0];
  }
}
