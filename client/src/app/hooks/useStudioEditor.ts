/** The Rete editor's lifecycle: created on the canvas element for a catalog, destroyed with it. */
import { useEffect, useState, type RefObject } from 'react';
import type { Catalog } from '../../../../server/protocol/catalog.ts';
import { createStudioEditor, type EditorHooks, type StudioEditor } from '../../editor/create-editor.tsx';
import { useLatest } from './useLatest.ts';

/** The editor once it is created (null before); `hooks` may change between renders. */
export function useStudioEditor(canvasRef: RefObject<HTMLDivElement | null>, catalog: Catalog, hooks: EditorHooks): StudioEditor | null {
  const [editor, setEditor] = useState<StudioEditor | null>(null);
  // The editor calls these long after this render: it must reach the newest ones.
  const latest = useLatest(hooks);
  useEffect(() => {
    let disposed = false;
    let created: StudioEditor | null = null;
    void createStudioEditor(canvasRef.current!, catalog, {
      onChange: (kind) => latest.current.onChange(kind),
      onRejectedConnection: (message) => latest.current.onRejectedConnection(message),
      onEditFailed: (message) => latest.current.onEditFailed(message),
      onCanvasDoubleClick: (at) => latest.current.onCanvasDoubleClick(at),
      onContextMenu: (target, client, at) => latest.current.onContextMenu(target, client, at),
      onWireDropped: (wire, client, at) => latest.current.onWireDropped(wire, client, at),
      uploadImage: (file) => latest.current.uploadImage(file),
    }).then((e) => {
      created = e;
      if (disposed) e.destroy();
      else setEditor(e);
    });
    return () => {
      disposed = true;
      created?.destroy();
      setEditor(null);
    };
  }, [canvasRef, catalog, latest]);
  return editor;
}
