/**
 * The etcd gateway client against a fake gateway: what goes on the wire (base64 keys, prefix
 * ranges, compares), failover to the next endpoint, etcd's own refusals, and errors that name
 * every endpoint. The real cluster is in test/integration/etcd-coordinator.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { EtcdClient, EtcdError, parseEtcdEndpoints, prefixEnd, type EtcdFetch } from '../../src/transport/etcd.js';

interface Call {
  url: string;
  body: Record<string, unknown>;
}

/** A fake gateway: each endpoint answers with its handler, or throws like a refused connection. */
function fakeGateway(handlers: Record<string, (path: string, body: Record<string, unknown>) => { status: number; json: unknown } | 'down'>): { fetch: EtcdFetch; calls: Call[] } {
  const calls: Call[] = [];
  const fetch: EtcdFetch = async (url, init) => {
    const u = new URL(url);
    const body = JSON.parse(init.body) as Record<string, unknown>;
    calls.push({ url, body });
    const h = handlers[`${u.protocol}//${u.host}`];
    const answer = h ? h(u.pathname, body) : 'down';
    if (answer === 'down') throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    return { status: answer.status, text: async () => JSON.stringify(answer.json) };
  };
  return { fetch, calls };
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('etcd endpoints', () => {
  it('reads etcd://h1:p,h2:p as http URLs, etcds:// as https, and refuses an empty list', () => {
    expect(parseEtcdEndpoints('etcd://h1:2379,h2:2379')).toEqual(['http://h1:2379', 'http://h2:2379']);
    expect(parseEtcdEndpoints('etcds://h1:2379')).toEqual(['https://h1:2379']);
    expect(parseEtcdEndpoints('http://10.0.0.1:2379/')).toEqual(['http://10.0.0.1:2379']);
    expect(() => parseEtcdEndpoints('etcd://')).toThrow(/no etcd endpoint/);
  });

  it('ends a prefix range at the next key after the prefix', () => {
    expect(Buffer.from(prefixEnd('baton/locks/'), 'base64').toString()).toBe('baton/locks0');
  });
});

describe('etcd client', () => {
  it('sends keys and values base64 and reads them back decoded, with revisions as numbers', async () => {
    const { fetch, calls } = fakeGateway({
      'http://a:1': (p) =>
        p === '/v3/kv/range'
          ? { status: 200, json: { kvs: [{ key: b64('k/1'), value: b64('v ü'), create_revision: '7', mod_revision: '9', version: '2', lease: '123' }] } }
          : { status: 200, json: {} },
    });
    const c = new EtcdClient(['http://a:1'], { fetch });
    const kvs = await c.range('k/', { prefix: true });
    expect(kvs).toEqual([{ key: 'k/1', value: 'v ü', createRevision: 7, modRevision: 9, version: 2, lease: '123' }]);
    expect(calls[0]!.url).toBe('http://a:1/v3/kv/range');
    expect(calls[0]!.body).toEqual({ key: b64('k/'), range_end: b64('k0') });
  });

  it('builds a transaction whose compares carry the field of their target', async () => {
    const { fetch, calls } = fakeGateway({ 'http://a:1': () => ({ status: 200, json: { succeeded: true, header: { revision: '12' }, responses: [{ response_put: {} }] } }) });
    const c = new EtcdClient(['http://a:1'], { fetch });
    const r = await c.txn(
      [
        { key: 'l', target: 'CREATE', result: 'EQUAL', value: 5 },
        { key: 'l', target: 'LEASE', result: 'EQUAL', value: '99' },
      ],
      [{ put: { key: 'j', value: 'line', lease: '99' } }],
      [{ range: { key: 'l' } }],
    );
    expect(r).toEqual({ succeeded: true, revision: 12, responses: [[]] });
    expect(calls[0]!.body).toEqual({
      compare: [
        { key: b64('l'), target: 'CREATE', result: 'EQUAL', create_revision: '5' },
        { key: b64('l'), target: 'LEASE', result: 'EQUAL', lease: '99' },
      ],
      success: [{ request_put: { key: b64('j'), value: b64('line'), lease: '99' } }],
      failure: [{ request_range: { key: b64('l') } }],
    });
  });

  it('a failed compare is an answer, not an error: succeeded is false and the failure branch is read', async () => {
    // proto3 leaves false out of the JSON: "succeeded" is simply absent.
    const { fetch } = fakeGateway({ 'http://a:1': () => ({ status: 200, json: { responses: [{ response_range: { kvs: [{ key: b64('l'), value: b64('x'), create_revision: '3' }] } }] } }) });
    const r = await new EtcdClient(['http://a:1'], { fetch }).txn([{ key: 'l', target: 'CREATE', result: 'EQUAL', value: 0 }], [], [{ range: { key: 'l' } }]);
    expect(r.succeeded).toBe(false);
    expect(r.responses[0]![0]!.createRevision).toBe(3);
  });

  it('goes on to the next endpoint when one is down, and stays with the one that answered', async () => {
    const { fetch, calls } = fakeGateway({ 'http://b:2': () => ({ status: 200, json: { ID: '42', TTL: '5' } }) });
    const c = new EtcdClient(['http://a:1', 'http://b:2'], { fetch });
    expect(await c.leaseGrant(5)).toBe('42');
    expect(await c.leaseGrant(5)).toBe('42');
    expect(calls.map((x) => new URL(x.url).host)).toEqual(['a:1', 'b:2', 'b:2']);
  });

  it('when no endpoint answers, the error says etcd, and what each endpoint said', async () => {
    const { fetch } = fakeGateway({ 'http://b:2': () => ({ status: 503, json: { error: 'etcdserver: no leader', code: 14 } }) });
    const c = new EtcdClient(['http://a:1', 'http://b:2'], { fetch, retryMs: 0 });
    const e = await c.put('k', 'v').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(EtcdError);
    expect((e as Error).message).toMatch(/etcd cannot be reached or has no quorum/);
    expect((e as Error).message).toContain('http://a:1: ECONNREFUSED');
    expect((e as Error).message).toContain('http://b:2: etcdserver: no leader');
  });

  it("etcd's own refusal (an expired lease) is final, not tried elsewhere; revoking an expired lease is fine", async () => {
    const { fetch, calls } = fakeGateway({
      'http://a:1': () => ({ status: 404, json: { error: 'etcdserver: requested lease not found', code: 5 } }),
      'http://b:2': () => ({ status: 200, json: {} }),
    });
    const c = new EtcdClient(['http://a:1', 'http://b:2'], { fetch });
    await expect(c.put('k', 'v', { lease: '1' })).rejects.toMatchObject({ code: 5, message: expect.stringMatching(/lease not found/) });
    expect(calls).toHaveLength(1);
    await expect(c.leaseRevoke('1')).resolves.toBeUndefined();
  });

  it('a keep-alive of an expired lease reads as TTL 0', async () => {
    const { fetch } = fakeGateway({ 'http://a:1': () => ({ status: 200, json: { result: { ID: '7' } } }) });
    expect(await new EtcdClient(['http://a:1'], { fetch }).leaseKeepAlive('7')).toBe(0);
  });
});
