/**
 * The strip of graph tabs above the canvas (ComfyUI's workflow tabs): click to switch, double-click
 * to rename, × to close (asking first when the graph has unsaved changes), + for a new empty graph,
 * and a menu that reopens the tab closed last (also Ctrl+Shift+T where the browser lets it through).
 */
import { useState } from 'react';
import type { GraphTabs } from './hooks/useGraphTabs.ts';

export function TabStrip({ tabs, onClose }: { tabs: GraphTabs; onClose(id: string): void }) {
  const [menu, setMenu] = useState(false);
  return (
    <div className="sd-tabs" role="tablist" aria-label="Open graphs" data-testid="tab-strip">
      {tabs.tabs.map((t) => (
        <GraphTab key={t.id} id={t.id} title={t.title} tabs={tabs} onClose={onClose} />
      ))}
      <button type="button" className="sd-tab-add" data-testid="tab-new" title="New graph in a new tab" onClick={() => tabs.add()}>
        +
      </button>
      <div className="sd-tab-menu">
        <button type="button" data-testid="tab-menu" title="Tab menu" aria-expanded={menu} onClick={() => setMenu(!menu)}>
          ⋯
        </button>
        {menu ? (
          <div className="sd-more-menu" role="menu" onClick={() => setMenu(false)}>
            <button type="button" role="menuitem" data-testid="tab-reopen" disabled={tabs.closed.length === 0} onClick={() => tabs.reopen()}>
              Reopen closed tab <kbd>Ctrl+Shift+T</kbd>
            </button>
          </div>
        ) : null}
      </div>
    </div>
  );
}

function GraphTab({ id, title, tabs, onClose }: { id: string; title?: string; tabs: GraphTabs; onClose(id: string): void }) {
  const [renaming, setRenaming] = useState(false);
  const meta = tabs.metaOf(id);
  const active = tabs.active === id;
  const label = title ?? meta.label;
  return (
    <div
      className={`sd-tab${active ? ' active' : ''}`}
      role="tab"
      aria-selected={active}
      data-testid="graph-tab"
      data-tab-id={id}
      data-active={active ? 'true' : 'false'}
      title={meta.dirty ? `${label} (unsaved changes)` : label}
      onClick={() => tabs.select(id)}
      onDoubleClick={() => setRenaming(true)}
      onAuxClick={(e) => {
        if (e.button === 1) onClose(id);
      }}
    >
      {renaming ? (
        <input
          className="sd-tab-rename"
          data-testid="tab-rename-input"
          defaultValue={label}
          autoFocus
          onFocus={(e) => e.currentTarget.select()}
          onKeyDown={(e) => {
            e.stopPropagation();
            if (e.key === 'Enter') e.currentTarget.blur();
            if (e.key === 'Escape') {
              // Left without renaming: the blur that follows keeps the name.
              e.currentTarget.dataset.cancelled = 'true';
              e.currentTarget.blur();
            }
          }}
          onBlur={(e) => {
            if (e.currentTarget.dataset.cancelled !== 'true') tabs.rename(id, e.currentTarget.value === meta.label ? '' : e.currentTarget.value);
            setRenaming(false);
          }}
        />
      ) : (
        <span className="sd-tab-label" data-testid="tab-label">
          {label}
        </span>
      )}
      {meta.dirty ? (
        <span className="sd-tab-dirty" data-testid="tab-dirty" aria-label="unsaved changes">
          ●
        </span>
      ) : null}
      <button
        type="button"
        className="sd-tab-close"
        data-testid="tab-close"
        title="Close this tab"
        onClick={(e) => {
          e.stopPropagation();
          onClose(id);
        }}
      >
        ×
      </button>
    </div>
  );
}
