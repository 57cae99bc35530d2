/** Modal dialogs: prompt, confirm, open-graph, and the searchable "Add node" palette. */
import { useCallback, useEffect, useState, type ReactNode } from 'react';
import type { CatalogNode } from '../../../server/protocol/catalog.ts';
import type { GraphListEntry } from '../api.ts';
import { NodeSearchInput, NodeSearchResults, useNodeSearch } from './NodeSearch.tsx';

export function Modal({
  title,
  onClose,
  children,
  testId,
  wide,
}: {
  title: string;
  onClose: () => void;
  children: ReactNode;
  testId: string;
  wide?: boolean | 'full';
}) {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.stopPropagation();
        e.preventDefault();
        onClose();
      }
    };
    window.addEventListener('keydown', onKey, true);
    return () => window.removeEventListener('keydown', onKey, true);
  }, [onClose]);
  return (
    <div className="sd-backdrop" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div className={`sd-dialog${wide === 'full' ? ' full' : wide ? ' wide' : ''}`} role="dialog" aria-label={title} data-testid={testId}>
        <h2>{title}</h2>
        {children}
      </div>
    </div>
  );
}

export function PromptDialog(props: {
  title: string;
  label: string;
  initial: string;
  confirmLabel: string;
  validate: (value: string) => string | null;
  onSubmit: (value: string) => void;
  onCancel: () => void;
  error?: string | null;
}) {
  const [value, setValue] = useState(props.initial);
  const [touched, setTouched] = useState(false);
  const problem = props.validate(value);
  const submit = () => {
    setTouched(true);
    if (!problem) props.onSubmit(value);
  };
  return (
    <Modal title={props.title} onClose={props.onCancel} testId="prompt-dialog">
      <label className="sd-field">
        {props.label}
        <input
          autoFocus
          data-testid="prompt-input"
          value={value}
          onChange={(e) => {
            setValue(e.target.value);
            setTouched(true);
          }}
          onKeyDown={(e) => e.key === 'Enter' && submit()}
        />
      </label>
      {(touched && problem) || props.error ? (
        <div className="sd-error" data-testid="prompt-error">
          {(touched && problem) || props.error}
        </div>
      ) : null}
      <div className="sd-actions">
        <button type="button" onClick={props.onCancel}>
          Cancel
        </button>
        <button type="button" className="primary" data-testid="prompt-ok" disabled={Boolean(problem)} onClick={submit}>
          {props.confirmLabel}
        </button>
      </div>
    </Modal>
  );
}

export function ConfirmDialog(props: { title: string; message: string; confirmLabel: string; danger?: boolean; onConfirm: () => void; onCancel: () => void }) {
  return (
    <Modal title={props.title} onClose={props.onCancel} testId="confirm-dialog">
      <p>{props.message}</p>
      <div className="sd-actions">
        <button type="button" onClick={props.onCancel} autoFocus>
          Cancel
        </button>
        <button type="button" className={props.danger ? 'danger' : 'primary'} data-testid="confirm-ok" onClick={props.onConfirm}>
          {props.confirmLabel}
        </button>
      </div>
    </Modal>
  );
}

export function OpenDialog(props: {
  load: () => Promise<GraphListEntry[]>;
  onOpen: (entry: GraphListEntry) => void;
  onDelete: (entry: GraphListEntry) => Promise<void>;
  onCancel: () => void;
}) {
  const [entries, setEntries] = useState<GraphListEntry[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const { load } = props;
  const refresh = useCallback(() => {
    load().then(setEntries, (err: Error) => setError(err.message));
  }, [load]);
  useEffect(refresh, [refresh]);
  const templates = (entries ?? []).filter((e) => e.source === 'template');
  const user = (entries ?? []).filter((e) => e.source !== 'template');
  const row = (e: GraphListEntry) => (
    <li key={`${e.source}:${e.name}`} className="sd-open-row">
      <button type="button" className="sd-open-item" data-testid={`open-${e.name}`} onClick={() => props.onOpen(e)}>
        <span className="sd-open-title">{e.title || e.name}</span>
        <span className="sd-open-name">{e.name}</span>
        {e.source === 'template' ? <span className="sd-tag">template</span> : <span className="sd-open-date">{formatDate(e.updatedAt)}</span>}
      </button>
      {e.source !== 'template' ? (
        <button
          type="button"
          className="sd-link"
          title={`Delete “${e.name}”`}
          onClick={() => {
            if (window.confirm(`Delete the saved graph “${e.name}”? This cannot be undone.`))
              void props.onDelete(e).then(refresh, (err: Error) => setError(err.message));
          }}
        >
          Delete
        </button>
      ) : null}
    </li>
  );
  return (
    <Modal title="Open graph" onClose={props.onCancel} testId="open-dialog" wide>
      {error ? <div className="sd-error">{error}</div> : null}
      {entries === null && !error ? <p className="muted">Loading…</p> : null}
      {entries !== null ? (
        <div className="sd-open-lists">
          <section>
            <h3>Templates</h3>
            {templates.length ? <ul>{templates.map(row)}</ul> : <p className="muted">No templates on this server.</p>}
          </section>
          <section>
            <h3>Your graphs</h3>
            {user.length ? <ul>{user.map(row)}</ul> : <p className="muted">Nothing saved yet. Use Save to keep a graph on the server.</p>}
          </section>
        </div>
      ) : null}
      <div className="sd-actions">
        <button type="button" onClick={props.onCancel}>
          Close
        </button>
      </div>
    </Modal>
  );
}

function formatDate(v: string | number | undefined): string {
  if (v === undefined) return '';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString();
}

export function Palette(props: { nodes: CatalogNode[]; onPick: (type: string) => void; onCancel: () => void }) {
  const search = useNodeSearch(props.nodes, props.onPick, true);
  return (
    <Modal title="Add node" onClose={props.onCancel} testId="palette">
      <NodeSearchInput search={search} className="sd-search" testId="palette-search" />
      <NodeSearchResults
        search={search}
        className="sd-palette-list"
        emptyClassName="muted"
        itemAttrs={(n) => ({ 'data-testid': `palette-item-${n.type}` })}
        renderItem={(n) => (
          <>
            <span className="sd-palette-title">{n.title}</span>
            <span className="sd-palette-cat">{n.category}</span>
            {n.description ? <span className="sd-palette-desc">{n.description}</span> : null}
          </>
        )}
      />
    </Modal>
  );
}
