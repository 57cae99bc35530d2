/**
 * The latest value for event handlers that outlive a render (the editor's change hook, window key
 * listeners): updated after every commit, read only when the event fires, never during render.
 */
import { useCallback, useLayoutEffect, useRef } from 'react';

export function useLatest<T>(value: T): { readonly current: T } {
  const ref = useRef(value);
  useLayoutEffect(() => {
    ref.current = value;
  });
  return ref;
}

/** A function with a stable identity that always calls the newest `fn` (React's proposed useEffectEvent). */
export function useStableCallback<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  const ref = useLatest(fn);
  return useCallback((...args: A) => ref.current(...args), [ref]);
}
