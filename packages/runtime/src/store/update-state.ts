import { StorageError } from '@outpost/core';
import type { ActiveRecord, BadRecord, TrustRecord } from './db.js';
import type { ModelStore } from './store.js';

/**
 * Update bookkeeping beside the model bytes, in the same database: the trusted repository
 * metadata (highest versions seen, U4), the active version per model, versions marked bad
 * (U16), and the device's random rollout id (U17). The active pointer changes in one
 * transaction that also checks the version is stored, so a killed tab leaves the old pointer or
 * the new one, never a pointer to bytes that are not there.
 */
export class UpdateState {
  constructor(private readonly store: ModelStore) {}

  private async db() {
    try {
      return await this.store.open();
    } catch (err) {
      throw err instanceof StorageError ? err : new StorageError(String(err), { cause: err });
    }
  }

  async trust(url: string): Promise<TrustRecord | undefined> {
    return (await this.db()).get('trust', url);
  }

  async saveTrust(url: string, state: TrustRecord['state'], now = Date.now()): Promise<void> {
    await (await this.db()).put('trust', { url, state, savedAt: now });
  }

  async active(name: string): Promise<ActiveRecord | undefined> {
    return (await this.db()).get('active', name);
  }

  /**
   * Makes `version` the active one, remembering the one before. Fails (and changes nothing)
   * when no variant of that version is stored.
   */
  async activate(name: string, version: string, now = Date.now()): Promise<ActiveRecord> {
    const db = await this.db();
    const tx = db.transaction(['models', 'active'], 'readwrite');
    const models = tx.objectStore('models');
    const active = tx.objectStore('active');
    const [stored, prev] = await Promise.all([
      models.getAll(IDBKeyRange.bound([name, version, ''], [name, version, '\uffff'])),
      active.get(name),
    ]);
    if (stored.length === 0) {
      tx.abort();
      await tx.done.catch(() => undefined);
      throw new StorageError(`${name}@${version} is not stored; it cannot be activated`);
    }
    const record: ActiveRecord = { name, version, activatedAt: now };
    const previous = prev?.version === version ? prev.previous : prev?.version;
    if (previous !== undefined) record.previous = previous;
    await active.put(record);
    await tx.done;
    return record;
  }

  /** Names of every model with an active version. */
  async activeNames(): Promise<string[]> {
    return (await this.db()).getAllKeys('active');
  }

  async isBad(name: string, version: string): Promise<BadRecord | undefined> {
    return (await this.db()).get('bad', [name, version]);
  }

  async markBad(name: string, version: string, reason: string, now = Date.now()): Promise<void> {
    await (await this.db()).put('bad', { name, version, reason, at: now });
  }

  /** Versions the app pinned: never evicted by retention. */
  async pinned(name: string): Promise<Set<string>> {
    const rec = await (await this.db()).get('meta', `pins:${name}`);
    return new Set(rec ? (JSON.parse(rec.value) as string[]) : []);
  }

  async setPinned(name: string, version: string, pinned: boolean): Promise<void> {
    const db = await this.db();
    const tx = db.transaction('meta', 'readwrite');
    const rec = await tx.store.get(`pins:${name}`);
    const set = new Set(rec ? (JSON.parse(rec.value) as string[]) : []);
    if (pinned) set.add(version);
    else set.delete(version);
    await tx.store.put({ key: `pins:${name}`, value: JSON.stringify([...set]) });
    await tx.done;
  }

  /** The device's rollout id: random, made once, stored locally, never derived from the device. */
  async deviceId(): Promise<string> {
    const db = await this.db();
    const tx = db.transaction('meta', 'readwrite');
    const found = await tx.store.get('device-id');
    if (found) {
      await tx.done;
      return found.value;
    }
    const value = crypto.randomUUID();
    await tx.store.put({ key: 'device-id', value });
    await tx.done;
    return value;
  }
}
