/** The results button lights up when results arrive while the panel is closed. */
import { useState } from 'react';
import { useObservable } from '../../runtime.ts';
import { useStudio } from '../studio-store.ts';

export function useFreshResults(panelOpen: boolean) {
  const images = useObservable(useStudio().gallery.images);
  const newest = images[0]?.key;
  const [seen, setSeen] = useState(newest);
  // While the panel is open every result is seen (adjusted during render, not in an effect).
  if (panelOpen && seen !== newest) setSeen(newest);
  return { count: images.length, fresh: !panelOpen && newest !== undefined && newest !== seen };
}
