import { describe, expect, it } from 'vitest';
import type { ApiKeyStore } from '../../src/store/index.js';
import { expectCode } from '../helpers/errors.js';

export interface KeyStoreHarness {
  keys: ApiKeyStore;
  /** Another instance over the same keys, as a second server process would have. */
  another(): ApiKeyStore;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The contract every API key store passes: the data dir's api_keys.json and the database's
 * api_keys table. `setup` gives a fresh, empty store for each test.
 */
export function describeKeyStoreConformance(name: string, setup: () => Promise<KeyStoreHarness>): void {
  describe(`API key store conformance: ${name}`, () => {
    it('a made key verifies as its user until it is revoked, by id or by the whole key', async () => {
      const { keys } = await setup();
      const one = await keys.create('alice', '  laptop  ');
      const two = await keys.create('alice');
      expect(one.info).toMatchObject({ userId: 'alice', name: 'laptop', admin: false, revokedAt: null });
      expect(one.key.startsWith(one.info.prefix.replace('…', ''))).toBe(true);
      expect(two.info.name).toBeNull();
      expect(await keys.verify(one.key)).toEqual({ userId: 'alice', keyId: one.info.id, admin: false });

      const revoked = await keys.revoke(one.info.id);
      expect(revoked.revokedAt).not.toBeNull();
      expect(await keys.verify(one.key)).toBeNull();
      expect(await keys.verify(two.key)).not.toBeNull();
      await keys.revoke(two.key);
      expect(await keys.verify(two.key)).toBeNull();
      // Revoking again keeps the first time.
      expect((await keys.revoke(one.info.id)).revokedAt).toBe(revoked.revokedAt);
    });

    it('copies keys in from another store: the same keys verify, revoked ones stay revoked, copying again adds nothing', async () => {
      const { keys: source } = await setup();
      const laptop = await source.create('alice', 'laptop', { admin: true });
      const old = await source.create('alice');
      await source.revoke(old.info.id);
      const phone = await source.create('bob', 'phone');
      expect(await source.keyUsers()).toEqual(['alice', 'bob']);
      const records = [...(await source.records('alice')), ...(await source.records('bob'))];
      expect(records.map((r) => r.id).sort()).toEqual([laptop.info.id, old.info.id, phone.info.id].sort());
      for (const record of records) expect(record.hash).toMatch(/^[0-9a-f]{64}$/);
      const listed = await source.list();

      // A fresh store (a harness may close the first one now).
      const { keys: target } = await setup();
      expect(await target.copyIn(records)).toBe(3);
      expect(await target.verify(laptop.key)).toEqual({ userId: 'alice', keyId: laptop.info.id, admin: true });
      expect(await target.verify(old.key)).toBeNull();
      expect(await target.verify(phone.key)).toEqual({ userId: 'bob', keyId: phone.info.id, admin: false });
      const byId = (list: { id: string }[]): { id: string }[] => [...list].sort((a, b) => (a.id < b.id ? -1 : 1));
      expect(byId(await target.list())).toEqual(byId(listed));
      expect(await target.copyIn(records)).toBe(0);
      await expectCode(target.copyIn([{ ...(records[0] as (typeof records)[number]), hash: 'not a hash' }]), 'MEMEX_INVALID_INPUT');
      expect(await target.list()).toHaveLength(3);
    });

    it('refuses a wrong secret, a malformed token and an unknown key', async () => {
      const { keys } = await setup();
      const { key, info } = await keys.create('alice');
      const wrongSecret = `${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`;
      expect(await keys.verify(wrongSecret)).toBeNull();
      expect(await keys.verify(`mx_${'z'.repeat(12)}_${'A'.repeat(43)}`)).toBeNull();
      for (const bad of ['', 'Bearer', key.slice(0, -1), `${key}x`, info.id, `mx_${info.id}`]) expect(await keys.verify(bad), bad).toBeNull();
      await expectCode(keys.revoke('zzzzzzzzzzzz'), 'MEMEX_KEY_NOT_FOUND');
    });

    it('lists keys oldest first, per user or all, never with a hash or secret', async () => {
      const { keys } = await setup();
      const a1 = await keys.create('alice', 'a1');
      const b1 = await keys.create('bob', 'b1', { admin: true });
      const a2 = await keys.create('alice', 'a2');
      expect((await keys.list('alice')).map((k) => k.id)).toEqual([a1.info.id, a2.info.id]);
      expect((await keys.list('bob')).map((k) => k.id)).toEqual([b1.info.id]);
      expect((await keys.list('carol'))).toEqual([]);
      const all = await keys.list();
      expect(all.map((k) => k.id)).toEqual([a1.info.id, b1.info.id, a2.info.id]);
      expect(all[1]).toEqual(b1.info);
      for (const info of all) {
        expect(Object.keys(info).sort()).toEqual(['admin', 'createdAt', 'id', 'name', 'prefix', 'revokedAt', 'userId']);
        expect(JSON.stringify(info)).not.toContain(a1.key.slice(-43));
      }
    });

    it("revoking a user's keys revokes all of theirs and no one else's", async () => {
      const { keys } = await setup();
      const a1 = await keys.create('alice');
      const a2 = await keys.create('alice');
      const b = await keys.create('bob');
      await keys.revoke(a2.info.id);
      expect(await keys.revokeUser('alice')).toBe(1);
      expect(await keys.revokeUser('alice')).toBe(0);
      expect(await keys.revokeUser('nobody')).toBe(0);
      expect(await keys.verify(a1.key)).toBeNull();
      expect(await keys.verify(b.key)).not.toBeNull();
      expect((await keys.list('alice')).every((k) => k.revokedAt !== null)).toBe(true);
    });

    it('says whether any key is live', async () => {
      const { keys } = await setup();
      expect(await keys.hasLiveKeys()).toBe(false);
      const { info } = await keys.create('alice');
      expect(await keys.hasLiveKeys()).toBe(true);
      await keys.revoke(info.id);
      expect(await keys.hasLiveKeys()).toBe(false);
      await keys.check();
    });

    it('carries the admin flag to the caller', async () => {
      const { keys } = await setup();
      const { key, info } = await keys.create('root', 'ops', { admin: true });
      expect(info.admin).toBe(true);
      expect(await keys.verify(key)).toEqual({ userId: 'root', keyId: info.id, admin: true });
    });

    it('refuses an invalid user id', async () => {
      const { keys } = await setup();
      await expectCode(keys.create('../bob'), 'MEMEX_INVALID_ID');
      await expectCode(keys.revokeUser('a/b'), 'MEMEX_INVALID_ID');
    });

    it('a key revoked through one instance is refused by another within a second', async () => {
      const harness = await setup();
      const other = harness.another();
      const { key, info } = await harness.keys.create('alice');
      // The other instance has just checked it (and may cache that), then the first revokes it.
      expect(await other.verify(key)).not.toBeNull();
      await harness.keys.revoke(info.id);
      expect(await harness.keys.verify(key)).toBeNull();
      await sleep(1050);
      expect(await other.verify(key)).toBeNull();
      // And a key made through one instance works at once through the other.
      const made = await other.create('bob');
      expect(await harness.keys.verify(made.key)).toMatchObject({ userId: 'bob' });
    });
  });
}
