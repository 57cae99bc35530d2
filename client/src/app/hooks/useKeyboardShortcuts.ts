/** The studio's keyboard shortcuts, on the window; off while a dialog is open (it has its own keys). */
import { useEffect } from 'react';
import { useLatest } from './useLatest.ts';

export interface ShortcutActions {
  run(): void;
  hasActiveJob(): boolean;
  cancel(): void;
  undo(): void;
  redo(): void;
  deleteSelected(): void;
  save(): void;
  open(): void;
}

export function isTextEditing(t: EventTarget | null): boolean {
  if (!(t instanceof HTMLElement)) return false;
  if (t.isContentEditable || t.tagName === 'TEXTAREA') return true;
  if (t.tagName !== 'INPUT') return false;
  return !['checkbox', 'radio', 'button', 'submit', 'range', 'file', 'color'].includes((t as HTMLInputElement).type);
}

export function useKeyboardShortcuts(actions: ShortcutActions, enabled: boolean): void {
  // The listener is added once; a key press must reach the newest actions and the dialog state now.
  const latest = useLatest({ actions, enabled });
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const { actions: a, enabled: on } = latest.current;
      if (!on) return;
      const mod = e.ctrlKey || e.metaKey;
      const key = e.key.toLowerCase();
      // In a node's parameter field, Ctrl+Z goes to the graph history too: typing there is recorded
      // (coalesced per field), and the browser's own undo does not survive React's re-renders.
      const typing = isTextEditing(e.target);
      const inParam = e.target instanceof Element && e.target.closest('.sd-param') !== null;
      const editing = typing && !inParam;
      if (mod && e.key === 'Enter') {
        e.preventDefault();
        a.run();
      } else if (e.key === 'Escape') {
        if (a.hasActiveJob()) {
          e.preventDefault();
          a.cancel();
        }
      } else if (mod && key === 'z' && !e.shiftKey && !editing) {
        e.preventDefault();
        a.undo();
      } else if (mod && ((key === 'z' && e.shiftKey) || key === 'y') && !editing) {
        e.preventDefault();
        a.redo();
      } else if ((e.key === 'Delete' || e.key === 'Backspace') && !typing && !mod) {
        // Never while typing, not even in a node's own field: Backspace there deletes a character.
        e.preventDefault();
        a.deleteSelected();
      } else if (mod && key === 's') {
        e.preventDefault();
        a.save();
      } else if (mod && key === 'o') {
        e.preventDefault();
        a.open();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [latest]);
}
