/**
 * What part of the graph the canvas shows. Fit shows all of it, clear of the minimap; on opening a
 * graph, never smaller than a readable scale (then from its top-left corner). A fitted view stays
 * fitted while the canvas changes size (a panel opens), until the user pans or zooms.
 */
import { AreaExtensions, type AreaPlugin } from 'rete-area-plugin';
import { boundsOf, fitTransform, type Rect } from '../layout.ts';
import type { Schemes } from './schemes.ts';

/** Below this scale node text is hard to read: the 13 px parameter labels stay at 11 px or more. */
export const READABLE_SCALE = 11 / 13;
/** Screen pixels between the canvas's edge and a graph shown from its start. */
const START_PADDING = 12;

export function createView(c: {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the area carries create-editor.tsx's extra signals; only its base API is used here
  area: AreaPlugin<Schemes, any>;
  container: HTMLElement;
  state: { loading: boolean };
  /** Everything drawn in graph units: nodes and frames. */
  boxes(): Rect[];
}) {
  const { area, container } = c;
  let fitted: { readable?: boolean } | null = null;
  const onResize = new ResizeObserver(() => {
    if (fitted && !c.state.loading) void zoomToFit(fitted);
  });
  onResize.observe(container);

  /**
   * The browser scrolls the (overflow: hidden) container to bring a focused or clicked control into
   * view; the area's transform does not know it, so a fit computed over a scrolled container showed an
   * empty canvas. A fit or a focus starts from the unscrolled container.
   */
  function unscroll(): void {
    container.scrollTop = 0;
    container.scrollLeft = 0;
  }

  async function zoomToFit(opts: { readable?: boolean } = {}): Promise<void> {
    fitted = opts;
    unscroll();
    const boxes = c.boxes();
    const view = { width: container.clientWidth, height: container.clientHeight };
    const t = area.area.transform;
    if (boxes.length === 0) {
      t.x = view.width / 2;
      t.y = view.height / 3;
      await area.area.zoom(1, 0, 0);
      return;
    }
    // The minimap's corner of the canvas, measured as drawn (the preset places and sizes it).
    const map = container.dataset.minimap === 'off' ? null : container.querySelector<HTMLElement>('[data-testid="minimap"]');
    const frame = container.getBoundingClientRect();
    const corner = map ? { width: frame.right - map.getBoundingClientRect().left, height: frame.bottom - map.getBoundingClientRect().top } : null;
    const fit = fitTransform(boundsOf(boxes), view, corner, { padding: 28, maxScale: 1, ...(opts.readable ? { minScale: READABLE_SCALE } : {}) });
    const bounds = boundsOf(boxes);
    // Held at the readable scale, the view starts at the graph's top-left corner, close to the edges:
    // every pixel shows more of the pipeline's start.
    const held = opts.readable && fit.k === READABLE_SCALE;
    t.x = held ? START_PADDING - bounds.x * fit.k : fit.x;
    t.y = held ? START_PADDING - bounds.y * fit.k : fit.y;
    await area.area.zoom(fit.k, 0, 0);
  }

  return {
    zoomToFit,
    async focus(nodeId: string) {
      fitted = null;
      unscroll();
      await AreaExtensions.zoomAt(area, [nodeId], { scale: 0.5 });
    },
    /** The user panned or zoomed: the view no longer follows the canvas's size. */
    unfit() {
      fitted = null;
    },
    stop() {
      onResize.disconnect();
    },
  };
}
