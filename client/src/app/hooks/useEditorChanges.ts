/**
 * The editor's change events, taken once per gesture (a load, a delete with its connections sends
 * many): the document takes the new graph (dirty flag, autosave), and structure or parameter changes
 * are checked again. Subscribed after the document and the validation exist, so no hook reaches one
 * that is built later.
 */
import { useEffect } from 'react';
import type { StudioEditor } from '../../editor/create-editor.tsx';
import type { ChangeKind } from '../../editor/schemes.ts';
import { useLatest } from './useLatest.ts';

export function useEditorChanges(editor: StudioEditor | null, handlers: { edited(byStudio: boolean): void; revalidate(): void }): void {
  const latest = useLatest(handlers);
  useEffect(() => {
    if (!editor) return;
    const kinds = new Set<ChangeKind>();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stop = editor.onChange((kind) => {
      kinds.add(kind);
      clearTimeout(timer);
      timer = setTimeout(() => {
        const layoutOnly = kinds.size === 1 && kinds.has('layout');
        const check = kinds.has('structure') || kinds.has('params');
        kinds.clear();
        latest.current.edited(layoutOnly);
        if (check) latest.current.revalidate();
      }, 0);
    });
    return () => {
      stop();
      clearTimeout(timer);
    };
  }, [editor, latest]);
}
