/**
 * CHAP with MD5 (RFC 1994, as iSCSI uses it in RFC 7143 §12.1.3): the target sends an
 * identifier CHAP_I (0..255) and a challenge CHAP_C; the initiator answers
 * CHAP_R = MD5(one octet identifier || secret || challenge). Binary values travel as
 * hex with a "0x" prefix or base64 with a "0b" prefix.
 */
import { createHash } from 'node:crypto';

export const CHAP_MD5 = 5;

export function decodeBinary(value: string): Buffer {
  if (/^0[xX]/.test(value)) {
    const hex = value.slice(2);
    if (!/^[0-9a-fA-F]*$/.test(hex)) throw new Error(`CHAP value "${value.slice(0, 40)}" is not hex`);
    return Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
  }
  if (/^0[bB]/.test(value)) return Buffer.from(value.slice(2), 'base64');
  throw new Error(`CHAP value "${value.slice(0, 40)}" is neither 0x-hex nor 0b-base64`);
}

export function chapResponse(id: number, secret: string, challenge: Buffer): Buffer {
  if (!Number.isInteger(id) || id < 0 || id > 255) throw new Error(`CHAP identifier ${id} out of range (0..255)`);
  return createHash('md5').update(Buffer.from([id])).update(Buffer.from(secret, 'utf8')).update(challenge).digest();
}

export function encodeHex(b: Buffer): string {
  return `0x${b.toString('hex')}`;
}
