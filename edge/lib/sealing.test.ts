import { describe, expect, it } from 'vitest';
import { generateSealingKey, parseKeyring, SealingConfigError, UnsealError } from './sealing.ts';

const key = (id: string) => generateSealingKey(id);

describe('sealing keyring', () => {
  it('opens what it sealed, with a fresh IV every time', async () => {
    const keyring = await parseKeyring(key('k1'));
    const a = await keyring.seal('whsec_secret', 'row/1');
    const b = await keyring.seal('whsec_secret', 'row/1');
    expect(a.keyId).toBe('k1');
    expect(a.sealed).not.toBe(b.sealed);
    expect(a.sealed).not.toContain('whsec');
    expect(await keyring.open(a, 'row/1')).toBe('whsec_secret');
    expect(await keyring.open(b, 'row/1')).toBe('whsec_secret');
  });

  it('refuses a value moved to another row, altered, or opened with a key of the same id but other bytes', async () => {
    const keyring = await parseKeyring(key('k1'));
    const value = await keyring.seal('whsec_secret', 'row/1');
    await expect(keyring.open(value, 'row/2')).rejects.toThrow(UnsealError);
    const bytes = Uint8Array.from(atob(value.sealed), (c) => c.charCodeAt(0));
    bytes[bytes.length - 1]! ^= 1;
    await expect(keyring.open({ keyId: 'k1', sealed: btoa(String.fromCharCode(...bytes)) }, 'row/1')).rejects.toThrow(UnsealError);
    await expect((await parseKeyring(key('k1'))).open(value, 'row/1')).rejects.toThrow(/does not authenticate/);
  });

  it('seals with the first key and opens with any configured one; a missing key is named', async () => {
    const k1 = key('k1');
    const k2 = key('k2');
    const old = await (await parseKeyring(k1)).seal('v', 'c');
    const rotated = await parseKeyring(`${k2}, ${k1}`);
    expect(rotated.activeKeyId).toBe('k2');
    expect(rotated.keyIds).toEqual(['k2', 'k1']);
    expect(await rotated.open(old, 'c')).toBe('v');
    expect((await rotated.seal('v', 'c')).keyId).toBe('k2');
    const error = await (await parseKeyring(k2)).open(old, 'c').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsealError);
    expect((error as UnsealError).keyId).toBe('k1');
    expect((error as Error).message).toMatch(/key "k1", which is not among the configured keys \(k2\)/);
  });

  it('refuses a malformed configuration with the reason', async () => {
    await expect(parseKeyring('')).rejects.toThrow(SealingConfigError);
    await expect(parseKeyring('k1:' + btoa('short'))).rejects.toThrow(/5 bytes, expected 32/);
    await expect(parseKeyring('k1:not base64!')).rejects.toThrow(/not base64/);
    await expect(parseKeyring(generateSealingKey('k1').replace('k1:', ':'))).rejects.toThrow(/needs an id/);
    await expect(parseKeyring(`${key('k1')},${key('k1')}`)).rejects.toThrow(/appears twice/);
  });
});
