/**
 * The graph tabs' sessions in client/src/app/autosave.ts, on in-memory browser storage: a reload finds
 * its own session, a fresh browser tab starts from a copy of the newest session in slots of its own
 * (so it never writes another tab's), an earlier version's one-graph slot becomes one tab, and the
 * slots of closed tabs are kept for reopening while slots no session names are forgotten.
 */
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { GRAPH_FORMAT, GRAPH_VERSION, type Graph } from '../server/protocol/graph.ts';

class MemoryStorage {
  private map = new Map<string, string>();
  get length(): number {
    return this.map.size;
  }
  key(i: number): string | null {
    return [...this.map.keys()][i] ?? null;
  }
  getItem(k: string): string | null {
    return this.map.get(k) ?? null;
  }
  setItem(k: string, v: string): void {
    this.map.set(k, String(v));
  }
  removeItem(k: string): void {
    this.map.delete(k);
  }
}

const graph = (title: string): Graph => ({ format: GRAPH_FORMAT, version: GRAPH_VERSION, nodes: [], edges: [], meta: { title } });
const doc = { name: null, source: null, baseline: 'b' };
let local: MemoryStorage;
let session: MemoryStorage;

/** The module as a page load sees it (its tab id is read at import). */
async function load() {
  vi.resetModules();
  return import('../client/src/app/autosave.ts');
}

function putSession(tabId: string, value: object, savedAt = 1) {
  local.setItem(`dualstyle.session.v1.${tabId}`, JSON.stringify({ ...value, savedAt }));
}
function putSlot(graphId: string, title: string, savedAt: number) {
  local.setItem(`dualstyle.autosave.v3.${graphId}`, JSON.stringify({ graph: graph(title), doc, savedAt }));
}

describe('graph tab sessions (autosave.ts)', () => {
  beforeEach(() => {
    local = new MemoryStorage();
    session = new MemoryStorage();
    vi.stubGlobal('localStorage', local);
    vi.stubGlobal('sessionStorage', session);
    // No other tabs to ask whether this tab's id is taken.
    vi.stubGlobal('BroadcastChannel', undefined);
  });

  it('has nothing on a first visit', async () => {
    const a = await load();
    expect(a.readSession()).toBeNull();
  });

  it('gives a reload its own session, whatever another tab wrote since', async () => {
    session.setItem('dualstyle.tab-id', 'mine');
    putSession('mine', { tabs: [{ id: 'g1' }, { id: 'g2', title: 'portrait' }], active: 'g2', closed: [{ id: 'g0' }] });
    putSlot('g1', 'one', 10);
    putSession('other', { tabs: [{ id: 'g9' }], active: 'g9', closed: [] }, 99);
    putSlot('g9', 'newer', 99);
    const a = await load();
    expect(a.readSession()).toEqual({ tabs: [{ id: 'g1' }, { id: 'g2', title: 'portrait' }], active: 'g2', closed: [{ id: 'g0' }] });
  });

  it('starts a fresh browser tab from a copy of the newest session, in slots of its own', async () => {
    putSession('old', { tabs: [{ id: 'o1' }], active: 'o1', closed: [] }, 5);
    putSlot('o1', 'old work', 5);
    putSession('recent', { tabs: [{ id: 'r1' }, { id: 'r2' }], active: 'r2', closed: [{ id: 'r0' }] }, 1);
    putSlot('r1', 'first', 50);
    putSlot('r2', 'second', 60);
    const a = await load();
    const s = a.readSession()!;
    expect(s.tabs).toHaveLength(2);
    expect(s.tabs.map((t) => t.id)).not.toContain('r1');
    expect(s.closed).toEqual([]);
    expect(s.tabs.map((t) => a.readAutosave(t.id)?.graph.meta.title)).toEqual(['first', 'second']);
    expect(s.active).toBe(s.tabs[1]!.id);
    // Writing the copy leaves the other tab's slot alone.
    a.writeAutosave(s.tabs[0]!.id, graph('edited here'), doc);
    expect(a.readAutosave('r1')?.graph.meta.title).toBe('first');
  });

  it('takes an earlier version’s one-graph slot as a session of one tab', async () => {
    local.setItem('dualstyle.autosave.v2.some-tab', JSON.stringify({ graph: graph('before tabs'), doc, savedAt: 3 }));
    const a = await load();
    const s = a.readSession()!;
    expect(s.tabs).toHaveLength(1);
    expect(a.readAutosave(s.active)?.graph.meta.title).toBe('before tabs');
  });

  it('keeps the slots of open and closed tabs, and forgets slots no session names', async () => {
    const a = await load();
    putSlot('open', 'open', 1);
    putSlot('closed', 'closed', 1);
    putSlot('stray', 'stray', 1);
    a.writeSession({ tabs: [{ id: 'open' }], active: 'open', closed: [{ id: 'closed' }] });
    expect(a.readAutosave('open')).not.toBeNull();
    expect(a.readAutosave('closed')).not.toBeNull();
    expect(a.readAutosave('stray')).toBeNull();
    expect(a.slotSummary('open')).toEqual({ label: 'open', dirty: true });
  });
});
