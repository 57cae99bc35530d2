/** What the right-click menu offers for what was clicked. */
import type { MenuTarget, StudioEditor } from '../editor/create-editor.tsx';
import type { WireEnd } from '../catalog-search.ts';
import type { Position } from '../graph-io.ts';
import { readClipboard } from '../clipboard.ts';
import type { MenuItem } from './ContextMenu.tsx';

export interface OpenMenu {
  target: MenuTarget;
  /** Where on the screen, and where in the graph. */
  client: Position;
  at: Position;
  /** A connection let go on empty canvas: the menu offers the node types that take it. */
  wire?: WireEnd;
}

export function menuItems(
  menu: OpenMenu,
  editor: StudioEditor,
  actions: { copy(): void; paste(at?: Position): void; notify(message: string): void },
): MenuItem[] {
  const t = menu.target;
  switch (t.kind) {
    case 'canvas':
      return [
        { label: 'Paste here', hint: 'Ctrl+V', disabled: readClipboard() === null, run: () => actions.paste(menu.at) },
        { label: 'Add a frame here', run: () => editor.addFrame({ ids: [], at: menu.at }) },
        { label: 'Arrange the graph', hint: 'Ctrl+Shift+A', run: () => void editor.arrange() },
        { label: 'Fit the graph in view', hint: 'F', run: () => void editor.zoomToFit() },
      ];
    case 'node': {
      const ids = editor.selectedIds().includes(t.id) ? editor.selectedIds() : [t.id];
      const modes = editor
        .snapshot()
        .nodes.filter((n) => ids.includes(n.id))
        .map((n) => n.mode);
      const all = (m: string) => modes.length > 0 && modes.every((x) => x === m);
      const several = ids.length > 1 ? ` (${ids.length} nodes)` : '';
      return [
        { label: `Copy${several}`, hint: 'Ctrl+C', run: actions.copy },
        { label: `Duplicate${several}`, hint: 'Ctrl+D', run: () => void editor.duplicate(ids) },
        { label: `${all('bypass') ? 'Stop bypassing' : 'Bypass'}${several}`, hint: 'Ctrl+B', run: () => editor.toggleMode('bypass', ids) },
        { label: `${all('mute') ? 'Unmute' : 'Mute'}${several}`, hint: 'Ctrl+M', run: () => editor.toggleMode('mute', ids) },
        { label: 'Put in a frame', hint: 'Ctrl+G', run: () => editor.addFrame({ ids }) },
        { label: `Delete${several}`, hint: 'Del', run: () => void editor.removeNodes(ids) },
      ];
    }
    case 'connection':
      return [
        { label: 'Add a reroute point here', hint: 'double-click', run: () => editor.addPin(t.id, menu.at) },
        { label: 'Delete connection', run: () => void editor.removeConnection(t.id) },
      ];
    case 'pin':
      return [{ label: 'Remove reroute point', run: () => editor.removePin(t.id) }];
    case 'frame':
      return [
        { label: 'Rename frame', hint: 'double-click', run: () => editor.editFrameTitle(t.id) },
        { label: 'Remove frame (keep its nodes)', run: () => editor.removeFrame(t.id) },
      ];
  }
}
