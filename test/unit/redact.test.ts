import { describe, expect, it } from 'vitest';
import { isSecretName, Redactor, unmaskArgs } from '../../src/engine/redact.js';

// What is kept out of the journal and the terminal (src/engine/redact.ts).

describe('secrets in step arguments', () => {
  it("a fence agent's secret_key and an SNMP community are masked in the journaled args and in messages", () => {
    // Before: only options.password/passwd were masked: fence_aws's secret_key and a PDU's
    // community string were journaled as they were.
    const r = new Redactor();
    const args = { target: 'n1', provider: 'fence-agent', agent: 'fence_aws', options: { access_key: 'AKIAEXAMPLE123', secret_key: 'wJalrXUtnFEMI/K7MDENG', community: 'pdu-c0mmunity', region: 'eu-west-1' } };
    const journaled = r.maskArgs(args) as { options: Record<string, unknown> };
    expect(journaled.options).toEqual({ access_key: { $secret: 'options.access_key' }, secret_key: { $secret: 'options.secret_key' }, community: { $secret: 'options.community' }, region: 'eu-west-1' });
    expect(r.redact('fence_aws failed: bad key wJalrXUtnFEMI/K7MDENG')).toBe('fence_aws failed: bad key ********');
    // Undo renders them again from the inventory.
    expect(unmaskArgs(journaled, args)).toEqual(args);
  });

  it('inventory vars named so are secrets too', () => {
    for (const n of ['aws_secret_key', 'aws_access_key', 'pdu_community', 'bmc_password', 'api_token']) expect(isSecretName(n), n).toBe(true);
    for (const n of ['vip', 'interface', 'key_file', 'community_name']) expect(isSecretName(n), n).toBe(false);
  });
});
