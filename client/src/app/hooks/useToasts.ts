/** Short messages at the bottom of the screen: errors stay longer than the rest. */
import { useCallback, useState } from 'react';
import type { Toast } from '../panels.tsx';

export type Notify = (kind: Toast['kind'], message: string) => void;

export function useToasts(): { toasts: Toast[]; notify: Notify; dismiss: (id: number) => void } {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const dismiss = useCallback((id: number) => setToasts((t) => t.filter((x) => x.id !== id)), []);
  const notify = useCallback<Notify>(
    (kind, message) => {
      const id = Date.now() + Math.random();
      setToasts((t) => [...t.slice(-4), { id, kind, message }]);
      setTimeout(() => dismiss(id), kind === 'error' ? 8000 : 4000);
    },
    [dismiss],
  );
  return { toasts, notify, dismiss };
}
