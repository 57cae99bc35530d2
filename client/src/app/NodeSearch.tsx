/**
 * The search over node types that the Add-node palette and the canvas's right-click menu share: the
 * query, the highlighted result (arrows move it, the pointer too), Enter to pick, and the list of
 * matches. Each place keeps its own look through `renderItem` and its own test ids through `itemAttrs`.
 */
import { useEffect, useMemo, useRef, useState, type KeyboardEvent, type ReactNode } from 'react';
import type { CatalogNode } from '../../../server/protocol/catalog.ts';
import { searchCatalog } from '../catalog-search.ts';

export interface NodeSearch {
  query: string;
  setQuery(query: string): void;
  /** The matches, best first: every node while the query is empty when `listAllWhenEmpty`, else none. */
  found: CatalogNode[];
  active: number;
  setActive(index: number): void;
  pick(type: string): void;
  onKeyDown(e: KeyboardEvent<HTMLInputElement>): void;
}

export function useNodeSearch(nodes: CatalogNode[], onPick: (type: string) => void, listAllWhenEmpty: boolean): NodeSearch {
  const [query, setQueryState] = useState('');
  const [active, setActive] = useState(0);
  const found = useMemo(() => (listAllWhenEmpty || query.trim() ? searchCatalog(nodes, query) : []), [nodes, query, listAllWhenEmpty]);
  const setQuery = (q: string) => {
    setQueryState(q);
    setActive(0);
  };
  const onKeyDown = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.key === 'ArrowDown') {
      e.preventDefault();
      setActive((a) => Math.min(a + 1, found.length - 1));
    } else if (e.key === 'ArrowUp') {
      e.preventDefault();
      setActive((a) => Math.max(a - 1, 0));
    } else if (e.key === 'Enter' && found[active]) {
      onPick(found[active].type);
    }
  };
  return { query, setQuery, found, active, setActive, pick: onPick, onKeyDown };
}

/** The search field: focused on open, typing searches, arrows and Enter act on the matches. */
export function NodeSearchInput(props: { search: NodeSearch; className: string; testId: string }) {
  const { search } = props;
  return (
    <input
      autoFocus
      className={props.className}
      data-testid={props.testId}
      placeholder="Search nodes…"
      value={search.query}
      onChange={(e) => search.setQuery(e.target.value)}
      onKeyDown={search.onKeyDown}
    />
  );
}

/** The matches as buttons; the highlighted one stays in view. */
export function NodeSearchResults(props: {
  search: NodeSearch;
  className: string;
  emptyClassName: string;
  itemAttrs(node: CatalogNode): Record<`data-${string}`, string>;
  renderItem(node: CatalogNode): ReactNode;
}) {
  const { search } = props;
  const list = useRef<HTMLUListElement>(null);
  useEffect(() => {
    list.current?.querySelector('.active')?.scrollIntoView({ block: 'nearest' });
  }, [search.active]);
  return (
    <ul className={props.className} ref={list}>
      {search.found.map((n, i) => (
        <li key={n.type}>
          <button
            type="button"
            className={i === search.active ? 'active' : ''}
            {...props.itemAttrs(n)}
            onMouseEnter={() => search.setActive(i)}
            onClick={() => search.pick(n.type)}
          >
            {props.renderItem(n)}
          </button>
        </li>
      ))}
      {search.found.length === 0 ? <li className={props.emptyClassName}>No node matches “{search.query}”.</li> : null}
    </ul>
  );
}
