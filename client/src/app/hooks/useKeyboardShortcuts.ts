/** The studio's keyboard shortcuts, on the window; off while a dialog is open (it has its own keys). */
import { useEffect } from 'react';
import { useLatest } from './useLatest.ts';

export interface ShortcutActions {
  run(front: boolean): void;
  hasActiveJob(): boolean;
  cancel(): void;
  undo(): void;
  redo(): void;
  deleteSelected(): void;
  save(): void;
  open(): void;
  copy(): void;
  paste(keepInputs: boolean): void;
  duplicate(): void;
  bypass(): void;
  mute(): void;
  frame(): void;
  selectAll(): void;
  fit(): void;
  arrange(): void;
  help(): void;
  /** Reopens the graph tab closed last (Ctrl+Shift+T, where the browser lets it through). */
  reopenTab(): void;
}

export function isTextEditing(t: EventTarget | null): boolean {
  if (!(t instanceof HTMLElement)) return false;
  if (t.isContentEditable || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT') return true;
  if (t.tagName !== 'INPUT') return false;
  return !['checkbox', 'radio', 'button', 'submit', 'range', 'file', 'color'].includes((t as HTMLInputElement).type);
}

export function useKeyboardShortcuts(actions: ShortcutActions, enabled: boolean): void {
  // The listener is added once; a key press must reach the newest actions and the dialog state now.
  const latest = useLatest({ actions, enabled });
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const { actions: a, enabled: on } = latest.current;
      if (!on || e.defaultPrevented) return;
      const mod = e.ctrlKey || e.metaKey;
      const key = e.key.toLowerCase();
      // In a node's parameter field, Ctrl+Z goes to the graph history too: typing there is recorded
      // (coalesced per field), and the browser's own undo does not survive React's re-renders.
      const typing = isTextEditing(e.target);
      const inParam = e.target instanceof Element && e.target.closest('.sd-param') !== null;
      const editing = typing && !inParam;
      // Keys that act on nodes leave text fields (and text the user selected to copy) alone.
      const onGraph = !typing && !(key === 'c' && (window.getSelection()?.toString() ?? '') !== '');
      const act = (fn: () => void) => {
        e.preventDefault();
        fn();
      };
      if (mod && e.key === 'Enter') act(() => a.run(e.shiftKey));
      else if (e.key === 'Escape') {
        if (a.hasActiveJob()) act(a.cancel);
      } else if (mod && key === 'z' && !e.shiftKey && !editing) act(a.undo);
      else if (mod && ((key === 'z' && e.shiftKey) || key === 'y') && !editing) act(a.redo);
      else if ((e.key === 'Delete' || e.key === 'Backspace') && !typing && !mod) {
        // Never while typing, not even in a node's own field: Backspace there deletes a character.
        act(a.deleteSelected);
      } else if (mod && key === 's') act(a.save);
      else if (mod && key === 'o') act(a.open);
      else if (mod && key === 'c' && !e.shiftKey && onGraph) act(a.copy);
      else if (mod && key === 'v' && onGraph) act(() => a.paste(e.shiftKey));
      else if (mod && key === 'd' && onGraph) act(a.duplicate);
      else if (mod && key === 'b' && onGraph) act(a.bypass);
      else if (mod && key === 'm' && onGraph) act(a.mute);
      else if (mod && key === 'g' && onGraph) act(a.frame);
      else if (mod && key === 'a' && !e.shiftKey && onGraph) act(a.selectAll);
      else if (mod && key === 'a' && e.shiftKey && onGraph) act(a.arrange);
      else if (mod && e.shiftKey && key === 't') act(a.reopenTab);
      else if (!mod && !e.altKey && key === 'f' && onGraph) act(a.fit);
      else if (e.key === '?' && !typing) act(a.help);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [latest]);
}
