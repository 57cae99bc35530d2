/**
 * The right-click menu. On the canvas: a search over every node type (title, type, category and
 * description, so "vae", "encode" and "merge" find their nodes), then the categories; on a node,
 * a connection, a reroute point or a frame: what can be done to it. A connection let go on empty
 * canvas opens it too, with a heading and only the node types that take the connection, listed at
 * once. Esc or a click elsewhere closes it; it draws above everything on the canvas.
 */
import { useEffect, useLayoutEffect, useRef, useState, type RefObject } from 'react';
import type { CatalogNode } from '../../../server/protocol/catalog.ts';
import { groupByCategory } from '../catalog-search.ts';
import type { Position } from '../graph-io.ts';
import { useStableCallback } from './hooks/useLatest.ts';
import { NodeSearchInput, NodeSearchResults, useNodeSearch, type NodeSearch } from './NodeSearch.tsx';

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
  /** Every offered node type is listed before anything is typed (a dropped connection's few). */
  listAll?: boolean;
  /** A line above the search saying what the menu is for. */
  heading?: string;
  onAddNode?(type: string): void;
  items: MenuItem[];
  onClose(): void;
}) {
  const [open, setOpen] = useState<string | null>(null);
  const box = useRef<HTMLDivElement>(null);
  const pick = (type: string) => {
    props.onClose();
    props.onAddNode?.(type);
  };
  const search = useNodeSearch(props.nodes ?? NO_NODES, pick, props.listAll ?? false);
  const searching = props.listAll || search.query.trim() !== '';
  const pos = useOnScreen(box, props.at, `${searching}/${open}`);
  useCloseOnOutside(box, props.onClose);
  return (
    <div
      ref={box}
      className="sd-menu"
      data-testid="menu"
      data-purpose={props.listAll ? 'connect' : 'menu'}
      role="menu"
      style={{ left: pos.x, top: pos.y }}
      onContextMenu={(e) => e.preventDefault()}
    >
      {props.heading ? (
        <div className="sd-menu-heading" data-testid="menu-heading">
          {props.heading}
        </div>
      ) : null}
      {props.nodes ? (
        <>
          <NodeSearchInput search={search} className="sd-menu-search" testId="menu-search" />
          {searching ? <MenuMatches search={search} /> : <MenuCategories nodes={props.nodes} open={open} setOpen={setOpen} pick={pick} />}
        </>
      ) : null}
      {props.items.length && !searching ? <MenuActions items={props.items} onClose={props.onClose} /> : null}
    </div>
  );
}

/** Kept on screen: a menu opened near an edge opens towards the middle. */
function useOnScreen(box: RefObject<HTMLDivElement | null>, at: Position, /** Changes when the menu's size may have. */ shape: string): Position {
  const [pos, setPos] = useState(at);
  // The window's size too: a menu open while the window shrinks moves back into it.
  const [windowSize, setWindowSize] = useState(() => `${window.innerWidth}x${window.innerHeight}`);
  useEffect(() => {
    const onResize = () => setWindowSize(`${window.innerWidth}x${window.innerHeight}`);
    window.addEventListener('resize', onResize);
    return () => window.removeEventListener('resize', onResize);
  }, []);
  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    const r = el.getBoundingClientRect();
    setPos({ x: Math.max(4, Math.min(at.x, window.innerWidth - r.width - 4)), y: Math.max(4, Math.min(at.y, window.innerHeight - r.height - 4)) });
  }, [box, at, shape, windowSize]);
  return pos;
}

/** Esc, or a press anywhere else, closes it (before the canvas or the studio's keys see it). */
function useCloseOnOutside(box: RefObject<HTMLDivElement | null>, onClose: () => void): void {
  const close = useStableCallback(onClose);
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
  }, [box, close]);
}

function MenuMatches({ search }: { search: NodeSearch }) {
  return (
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
  );
}

function MenuCategories(props: { nodes: CatalogNode[]; open: string | null; setOpen(category: string | null): void; pick(type: string): void }) {
  const { open, setOpen } = props;
  return (
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
                  <button type="button" data-testid="menu-node" data-node-type={n.type} onClick={() => props.pick(n.type)} title={n.description}>
                    {n.title}
                  </button>
                </li>
              ))}
            </ul>
          ) : null}
        </li>
      ))}
    </ul>
  );
}

function MenuActions(props: { items: MenuItem[]; onClose(): void }) {
  return (
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
  );
}
