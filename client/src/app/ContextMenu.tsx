/**
 * The right-click menu. On the canvas: a search over every node type (title, type, category and
 * description, so "vae", "encode" and "merge" find their nodes), then the categories; on a node,
 * a connection, a reroute point or a frame: what can be done to it. Esc or a click elsewhere
 * closes it; it draws above everything on the canvas.
 */
import { useEffect, useLayoutEffect, useRef, useState } from 'react';
import type { CatalogNode } from '../../../server/protocol/catalog.ts';
import { groupByCategory } from '../catalog-search.ts';
import type { Position } from '../graph-io.ts';
import { useStableCallback } from './hooks/useLatest.ts';
import { NodeSearchInput, NodeSearchResults, useNodeSearch } from './NodeSearch.tsx';

const NO_NODES: CatalogNode[] = [];

export interface MenuItem {
  label: string;
  hint?: string;
  disabled?: boolean;
  run(): void;
}

export function ContextMenu(props: {
  at: Position;
  /** Node types to offer (the canvas menu), or none. */
  nodes?: CatalogNode[];
  onAddNode?(type: string): void;
  items: MenuItem[];
  onClose(): void;
}) {
  const [open, setOpen] = useState<string | null>(null);
  const box = useRef<HTMLDivElement>(null);
  const [pos, setPos] = useState(props.at);
  const pick = (type: string) => {
    props.onClose();
    props.onAddNode?.(type);
  };
  const search = useNodeSearch(props.nodes ?? NO_NODES, pick, false);
  const searching = search.query.trim() !== '';

  // Kept on screen: a menu opened near an edge opens towards the middle.
  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    const r = el.getBoundingClientRect();
    setPos({ x: Math.max(4, Math.min(props.at.x, window.innerWidth - r.width - 4)), y: Math.max(4, Math.min(props.at.y, window.innerHeight - r.height - 4)) });
  }, [props.at, searching, open]);

  // Esc, or a press anywhere else, closes it (before the canvas or the studio's keys see it).
  const close = useStableCallback(props.onClose);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        close();
      }
    };
    const onDown = (e: PointerEvent) => {
      if (!box.current?.contains(e.target as Node)) close();
    };
    window.addEventListener('keydown', onKey, true);
    window.addEventListener('pointerdown', onDown, true);
    return () => {
      window.removeEventListener('keydown', onKey, true);
      window.removeEventListener('pointerdown', onDown, true);
    };
  }, [close]);
  return (
    <div ref={box} className="sd-menu" data-testid="menu" role="menu" style={{ left: pos.x, top: pos.y }} onContextMenu={(e) => e.preventDefault()}>
      {props.nodes ? (
        <>
          <NodeSearchInput search={search} className="sd-menu-search" testId="menu-search" />
          {searching ? (
            <NodeSearchResults
              search={search}
              className="sd-menu-list"
              emptyClassName="muted sd-menu-none"
              itemAttrs={(n) => ({ 'data-testid': 'menu-node', 'data-node-type': n.type })}
              renderItem={(n) => (
                <>
                  <span>{n.title}</span>
                  <span className="muted">{n.category}</span>
                </>
              )}
            />
          ) : (
            <ul className="sd-menu-list">
              {groupByCategory(props.nodes).map(([category, list]) => (
                <li key={category} className="sd-menu-category" onMouseEnter={() => setOpen(category)}>
                  <button type="button" data-testid="menu-category" onClick={() => setOpen(open === category ? null : category)}>
                    <span>{category}</span>
                    <span className="muted">›</span>
                  </button>
                  {open === category ? (
                    <ul className="sd-menu-sub">
                      {list.map((n) => (
                        <li key={n.type}>
                          <button type="button" data-testid="menu-node" data-node-type={n.type} onClick={() => pick(n.type)} title={n.description}>
                            {n.title}
                          </button>
                        </li>
                      ))}
                    </ul>
                  ) : null}
                </li>
              ))}
            </ul>
          )}
        </>
      ) : null}
      {props.items.length && !searching ? (
        <ul className="sd-menu-list actions">
          {props.items.map((item) => (
            <li key={item.label}>
              <button
                type="button"
                data-testid="menu-item"
                disabled={item.disabled}
                onClick={() => {
                  props.onClose();
                  item.run();
                }}
              >
                <span>{item.label}</span>
                {item.hint ? <kbd>{item.hint}</kbd> : null}
              </button>
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}
