/**
 * The Rete editor of one graph tab: created on the tab's own canvas element the first time the tab is
 * shown (a graph is laid out by measuring its nodes, which a canvas outside the page cannot do), and
 * destroyed with the tab.
 */
import { useEffect, useState } from 'react';
import type { Catalog } from '../../../../server/protocol/catalog.ts';
import { createStudioEditor, type EditorEnv, type EditorHooks, type StudioEditor } from '../../editor/create-editor.tsx';
import { useLatest } from './useLatest.ts';

/** The editor once it is created (null before, and until `canvas` is given); `hooks` may change between renders. */
export function useStudioEditor(canvas: HTMLDivElement | null, catalog: Catalog, hooks: EditorHooks, env: EditorEnv): StudioEditor | null {
  const [editor, setEditor] = useState<StudioEditor | null>(null);
  // The editor calls these long after this render: it must reach the newest ones.
  const latest = useLatest(hooks);
  useEffect(() => {
    if (!canvas) return;
    let disposed = false;
    let created: StudioEditor | null = null;
    const forward: EditorHooks = {
      onRejectedConnection: (message) => latest.current.onRejectedConnection(message),
      onEditFailed: (message) => latest.current.onEditFailed(message),
      onCanvasDoubleClick: (at) => latest.current.onCanvasDoubleClick(at),
      onContextMenu: (target, client, at) => latest.current.onContextMenu(target, client, at),
      onWireDropped: (wire, client, at) => latest.current.onWireDropped(wire, client, at),
      uploadImage: (file) => latest.current.uploadImage(file),
    };
    void createStudioEditor(canvas, catalog, forward, env).then((e) => {
      created = e;
      if (disposed) e.destroy();
      else setEditor(e);
    });
    return () => {
      disposed = true;
      created?.destroy();
      setEditor(null);
    };
  }, [canvas, catalog, latest, env]);
  return editor;
}
