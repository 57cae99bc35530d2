/**
 * The studio: boot (health + catalog), then the studio's store (made here, once, and handed down
 * through StudioContext), its graph tabs, and the settings and panels the tabs share.
 */
import { useCallback, useEffect, useState } from 'react';
import type { Catalog } from '../../../server/protocol/catalog.ts';
import { accessToken } from '../access-token.ts';
import { api, ApiError, type Health } from '../api.ts';
import { ConfirmDialog } from './dialogs.tsx';
import { useFreshResults } from './hooks/useFreshResults.ts';
import { useGraphTabs, type GraphTabs } from './hooks/useGraphTabs.ts';
import { useServerStatus } from './hooks/useServerStatus.ts';
import { useToasts } from './hooks/useToasts.ts';
import { Toasts } from './panels.tsx';
import { PackageNotice } from './PackageNotice.tsx';
import type { SeedControl } from './seeds.ts';
import { StudioContext, StudioStore } from './studio-store.ts';
import { TabStrip } from './TabStrip.tsx';
import type { StudioView } from './Toolbar.tsx';
import { Workspace, type SidePanel, type StudioUi } from './Workspace.tsx';

export function App() {
  const [catalog, setCatalog] = useState<Catalog | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [health, setHealth] = useState<Health | null>(null);
  const boot = useCallback(() => {
    setError(null);
    api.health().then(
      (h) => setHealth(h),
      () => undefined,
    );
    api
      .catalog()
      .then(setCatalog, (err: Error) =>
        setError(
          err instanceof ApiError && err.status === 401
            ? `${accessToken() ? 'The access token this tab was opened with is wrong.' : 'This studio is protected by an access token.'} ` +
                `Open it as ${window.location.origin}/?token=<token>, with the token the server was started with (--token or DUALSTYLE_TOKEN).`
            : err.message,
        ),
      );
  }, []);
  useEffect(boot, [boot]);
  if (error) {
    return (
      <div className="sd-splash">
        <h1>Dual Style Studio</h1>
        <p className="sd-error">Cannot load the node catalog: {error}</p>
        <button type="button" onClick={boot}>
          Try again
        </button>
      </div>
    );
  }
  if (!catalog) return <div className="sd-splash">Loading the node catalog…</div>;
  return <Studio catalog={catalog} health={health} />;
}

const MINIMAP_KEY = 'dualstyle.minimap';

function readFlag(key: string): boolean {
  try {
    return localStorage.getItem(key) === 'on';
  } catch {
    return false;
  }
}

function writeFlag(key: string, on: boolean): void {
  try {
    localStorage.setItem(key, on ? 'on' : 'off');
  } catch {
    /* not kept: fine */
  }
}

const SEED_KEY = 'dualstyle.seed-control';
const VIEW_KEY = 'dualstyle.view';

function readSetting(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function writeSetting(key: string, value: string): void {
  try {
    localStorage.setItem(key, value);
  } catch {
    /* not kept: fine */
  }
}

function Studio({ catalog, health }: { catalog: Catalog; health: Health | null }) {
  const { toasts, notify, dismiss } = useToasts();
  const [store] = useState(() => new StudioStore(notify));
  useEffect(() => () => store.close(), [store]);
  useEffect(() => {
    if (health) store.health.set(health);
  }, [store, health]);
  return (
    <StudioContext.Provider value={store}>
      <StudioTabs catalog={catalog} notify={notify} />
      <Toasts toasts={toasts} onDismiss={dismiss} />
      <PackageNotice catalog={catalog} />
    </StudioContext.Provider>
  );
}

/** The settings and panels every graph tab shares (kept in this browser where they outlive a visit). */
function useSharedUi() {
  const [panel, setPanel] = useState<SidePanel | null>(null);
  // Off until asked for (status bar): over the canvas it would cover nodes.
  const [minimap, setMinimap] = useState(() => readFlag(MINIMAP_KEY));
  const [seedControl, setSeedControl] = useState<SeedControl>(() => (readSetting(SEED_KEY) as SeedControl | null) ?? 'fixed');
  const [batch, setBatch] = useState(1);
  const [view, setView] = useState<StudioView>(() => (readSetting(VIEW_KEY) === 'simple' ? 'simple' : 'graph'));
  return {
    panel,
    setPanel,
    minimap,
    toggleMinimap: () => {
      writeFlag(MINIMAP_KEY, !minimap);
      setMinimap(!minimap);
    },
    seedControl,
    setSeedControl: (c: SeedControl) => {
      setSeedControl(c);
      writeSetting(SEED_KEY, c);
    },
    batch,
    setBatch,
    view,
    setView: (v: StudioView) => {
      setView(v);
      writeSetting(VIEW_KEY, v);
    },
  };
}

/** The graph tabs: every one mounted (its history and state live on), the active one shown. */
function StudioTabs({ catalog, notify }: { catalog: Catalog; notify: StudioUi['notify'] }) {
  const tabs = useGraphTabs();
  const shared = useSharedUi();
  const server = useServerStatus();
  const results = useFreshResults(shared.panel === 'results');
  const [closing, setClosing] = useState<string | null>(null);
  useWarnBeforeLeaving(tabs.tabs.some((t) => tabs.metaOf(t.id).dirty));
  /** Closes a tab; one with unsaved changes asks first. */
  const close = (id: string) => (tabs.metaOf(id).dirty ? setClosing(id) : tabs.close(id));
  const ui: StudioUi = {
    ...{ catalog, notify, server, results, ...shared },
    tabStrip: <TabStrip tabs={tabs} onClose={close} />,
    openInNewTab: (opening) => tabs.add(opening),
    reopenTab: () => {
      if (!tabs.reopen()) notify('info', 'No closed tab to reopen.');
    },
    reportMeta: tabs.report,
  };
  return (
    <div className="sd-app">
      {tabs.tabs.map((t) => (
        <Workspace key={t.id} tab={t} active={t.id === tabs.active} ui={ui} />
      ))}
      {closing ? <CloseTabDialog tabs={tabs} id={closing} onDone={() => setClosing(null)} /> : null}
    </div>
  );
}

/** Warns before the browser tab closes or reloads while any graph tab has unsaved changes (the autosave keeps them, but say so). */
function useWarnBeforeLeaving(unsaved: boolean): void {
  useEffect(() => {
    if (!unsaved) return;
    const onBeforeUnload = (e: BeforeUnloadEvent) => {
      e.preventDefault();
      e.returnValue = '';
    };
    window.addEventListener('beforeunload', onBeforeUnload);
    return () => window.removeEventListener('beforeunload', onBeforeUnload);
  }, [unsaved]);
}

/** Closing a tab with unsaved changes: the graph stays in "Reopen closed tab" either way. */
function CloseTabDialog({ tabs, id, onDone }: { tabs: GraphTabs; id: string; onDone(): void }) {
  const label = tabs.tabs.find((t) => t.id === id)?.title ?? tabs.metaOf(id).label;
  return (
    <ConfirmDialog
      title="Close a tab with unsaved changes?"
      message={
        `“${label}” has changes that are not saved. The closed tab can be opened again (tab menu ⋯ → Reopen closed tab, or Ctrl+Shift+T) ` +
        'until ten more tabs have been closed after it. Save first if you want to keep it for good.'
      }
      confirmLabel="Close tab"
      danger
      onConfirm={() => {
        tabs.close(id);
        onDone();
      }}
      onCancel={onDone}
    />
  );
}
