/** Node layout, pure geometry (unit-tested in Node): overlaps, pushing, fitting into a view. */
import dagre from '@dagrejs/dagre';
import type { Position } from './graph-io.ts';

export interface Rect {
  id: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * Moves nodes down just enough that no two overlap (a graph laid out for other node sizes, or a
 * hand-written file). Nodes keep their column and their top-to-bottom order. Returns the new
 * positions of the nodes that moved.
 */
export function resolveOverlaps(rects: Rect[], gap = 16): Map<string, Position> {
  const order = [...rects].sort((a, b) => a.y - b.y || a.x - b.x);
  const placed: Rect[] = [];
  const moved = new Map<string, Position>();
  for (const r of order) {
    let y = r.y;
    for (let changed = true; changed;) {
      changed = false;
      for (const p of placed) {
        const xOverlap = r.x < p.x + p.width && p.x < r.x + r.width;
        const yOverlap = y < p.y + p.height + gap && p.y < y + r.height + gap;
        if (xOverlap && yOverlap && y >= p.y) {
          y = p.y + p.height + gap;
          changed = true;
        }
      }
    }
    placed.push({ ...r, y });
    if (y !== r.y) moved.set(r.id, { x: r.x, y });
  }
  return moved;
}

/** Whether two rectangles overlap, or come closer than `gap`. */
export function overlaps(a: Rect, b: Rect, gap = 0): boolean {
  return a.x < b.x + b.width + gap && b.x < a.x + a.width + gap && a.y < b.y + b.height + gap && b.y < a.y + a.height + gap;
}

/**
 * Moves the rectangles `placing` down (as a group) until none of them overlaps any of `fixed`:
 * where pasted or duplicated nodes go when their first spot is taken.
 */
export function placeClear(placing: Rect[], fixed: Rect[], gap = 24): number {
  let dy = 0;
  for (let guard = 0; guard < 500; guard++) {
    const hit = fixed.find((f) => placing.some((p) => overlaps({ ...p, y: p.y + dy }, f, gap)));
    if (!hit) return dy;
    const lowest = Math.max(...placing.filter((p) => overlaps({ ...p, y: p.y + dy }, hit, gap)).map((p) => p.y));
    dy = hit.y + hit.height + gap - lowest;
  }
  return dy;
}

/**
 * A layered left-to-right layout (dagre, as ComfyUI's arrange does it): producers left of their
 * consumers, each rank a column. The result keeps the graph's top-left corner where it was.
 */
export function arrange(nodes: Rect[], edges: { source: string; target: string }[], opts: { rankSep?: number; nodeSep?: number } = {}): Map<string, Position> {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', ranksep: opts.rankSep ?? 70, nodesep: opts.nodeSep ?? 36, marginx: 0, marginy: 0 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) g.setNode(n.id, { width: n.width, height: n.height });
  for (const e of edges) if (g.hasNode(e.source) && g.hasNode(e.target)) g.setEdge(e.source, e.target);
  dagre.layout(g);
  const origin = { x: Math.min(...nodes.map((n) => n.x)), y: Math.min(...nodes.map((n) => n.y)) };
  const out = new Map<string, Position>();
  for (const n of nodes) {
    const { x, y } = g.node(n.id) as { x: number; y: number };
    out.set(n.id, { x: Math.round(origin.x + x - n.width / 2), y: Math.round(origin.y + y - n.height / 2) });
  }
  return out;
}

export interface Transform {
  k: number;
  x: number;
  y: number;
}

/** The rectangle around all of these. */
export function boundsOf(rects: Rect[]): Rect {
  const x = Math.min(...rects.map((r) => r.x));
  const y = Math.min(...rects.map((r) => r.y));
  return { id: 'bounds', x, y, width: Math.max(...rects.map((r) => r.x + r.width)) - x, height: Math.max(...rects.map((r) => r.y + r.height)) - y };
}

/**
 * The view transform (screen = graph × k + (x, y)) that shows `content` in a view of `view` pixels,
 * clear of a corner the view keeps for itself (`corner`: the minimap, bottom right). The content is
 * put either left of the corner or above it, whichever allows the larger scale, and centred there.
 * With `minScale`, a graph too big to fit at that scale is shown from its top-left corner instead.
 */
export function fitTransform(
  content: Rect,
  view: { width: number; height: number },
  corner: { width: number; height: number } | null,
  opts: { padding?: number; minScale?: number; maxScale?: number } = {},
): Transform {
  const pad = opts.padding ?? 24;
  const regions = corner
    ? [
        { w: view.width - corner.width, h: view.height },
        { w: view.width, h: view.height - corner.height },
      ]
    : [{ w: view.width, h: view.height }];
  const scaleIn = (r: { w: number; h: number }) => Math.min((r.w - 2 * pad) / content.width, (r.h - 2 * pad) / content.height, opts.maxScale ?? 1);
  const region = regions.reduce((best, r) => (scaleIn(r) > scaleIn(best) ? r : best));
  const fitted = scaleIn(region);
  if (opts.minScale !== undefined && fitted < opts.minScale) {
    const k = opts.minScale;
    return { k, x: pad - content.x * k, y: pad - content.y * k };
  }
  const k = Math.max(fitted, 0.05);
  return { k, x: region.w / 2 - (content.x + content.width / 2) * k, y: region.h / 2 - (content.y + content.height / 2) * k };
}
