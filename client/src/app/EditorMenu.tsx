/**
 * The studio's menu over the canvas: the right-click menu for what was clicked, or, for a connection
 * let go on empty canvas, the search over the node types that take it; the one picked is placed where
 * the connection was dropped and connected to it.
 */
import type { Catalog } from '../../../server/protocol/catalog.ts';
import { nodesForWire, type WireEnd } from '../catalog-search.ts';
import type { StudioEditor } from '../editor/create-editor.tsx';
import type { Position } from '../graph-io.ts';
import { ContextMenu } from './ContextMenu.tsx';
import { menuItems, type OpenMenu } from './menus.ts';

export function EditorMenu(props: {
  menu: OpenMenu;
  editor: StudioEditor;
  catalog: Catalog;
  copy(): void;
  paste(at?: Position): void;
  notify(kind: 'info' | 'error', message: string): void;
  onClose(): void;
}) {
  const { menu, editor, catalog, notify } = props;
  const failed = (err: Error) => notify('error', err.message);
  if (menu.wire) {
    const wire = menu.wire;
    return (
      <ContextMenu
        at={menu.client}
        heading={wireHeading(wire)}
        nodes={nodesForWire(catalog.nodes, wire)}
        listAll
        onAddNode={(type) => void editor.addNodeForWire(type, menu.at, wire).catch(failed)}
        items={[]}
        onClose={props.onClose}
      />
    );
  }
  return (
    <ContextMenu
      at={menu.client}
      nodes={menu.target.kind === 'canvas' ? catalog.nodes : undefined}
      onAddNode={(type) => void editor.addNode(type, menu.at).catch(failed)}
      items={menuItems(menu, editor, { copy: props.copy, paste: props.paste, notify: (m) => notify('info', m) })}
      onClose={props.onClose}
    />
  );
}

function wireHeading(wire: WireEnd): string {
  return wire.side === 'output' ? `Connect ${wire.type} to a new node:` : `Feed ${wire.type} from a new node:`;
}
