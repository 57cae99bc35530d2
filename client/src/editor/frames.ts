/**
 * Frames (groups): titled rectangles behind the nodes, in the area's content layer so they pan and
 * zoom with the graph; only the title bar is above the nodes. A click on the title bar picks the frame
 * (Delete then removes it, keeping its nodes); dragging it moves the frame with the nodes inside; the
 * corner handle resizes it; double-clicking the title renames it. Plain DOM: a frame is a few elements.
 */
import type { GraphGroup } from '../../../server/protocol/graph.ts';
import type { Rect } from '../layout.ts';

export interface FrameHooks {
  /** Scale of the view (screen px per graph unit). */
  zoom(): number;
  /** Nodes whose box lies inside the rectangle. */
  nodesInside(rect: Rect): string[];
  /** Moves nodes along with a frame (not recorded: the frame's action carries the move). */
  moveNodes(ids: string[], dx: number, dy: number): Promise<void>;
  /** A gesture ended: the frames went from `before` to the current list, moving `carried` nodes by (dx, dy). */
  committed(before: GraphGroup[], carried?: { ids: string[]; dx: number; dy: number }): void;
  contextMenu(id: string, e: MouseEvent): void;
  /** A frame was picked by its title bar (the nodes' selection gives way to it). */
  picked(id: string): void;
}

interface Frame {
  data: GraphGroup;
  el: HTMLDivElement;
  title: HTMLSpanElement;
}

const MIN_W = 120;
const MIN_H = 80;
export const FRAME_COLOR = '#3f4a63';

export class FramesLayer {
  private frames = new Map<string, Frame>();
  /** The frame picked by a click on its title bar (Delete removes it, keeping its nodes). */
  private selectedId: string | null = null;

  constructor(
    /** The area's content layer. */
    private readonly content: {
      holder: HTMLElement;
      add(el: HTMLElement): void;
      remove(el: HTMLElement): void;
      reorder(el: HTMLElement, next: ChildNode | null): void;
    },
    private readonly hooks: FrameHooks,
  ) {}

  list(): GraphGroup[] {
    return [...this.frames.values()].map((f) => ({ ...f.data }));
  }

  get(id: string): GraphGroup | undefined {
    const f = this.frames.get(id);
    return f ? { ...f.data } : undefined;
  }

  /** Replaces every frame (a load, an undo). */
  set(groups: GraphGroup[]): void {
    for (const f of this.frames.values()) this.content.remove(f.el);
    this.frames.clear();
    for (const g of groups) this.mount({ ...g });
  }

  selected(): string | null {
    return this.selectedId !== null && this.frames.has(this.selectedId) ? this.selectedId : null;
  }

  /** Picks a frame (null: none); shown by its outline. */
  select(id: string | null): void {
    if (id === this.selectedId) return;
    if (this.selectedId !== null) this.frames.get(this.selectedId)?.el.classList.remove('selected');
    this.selectedId = id !== null && this.frames.has(id) ? id : null;
    if (this.selectedId !== null) this.frames.get(this.selectedId)!.el.classList.add('selected');
  }

  /** A frame id not used yet. */
  freshId(): string {
    for (let i = 1; ; i++) if (!this.frames.has(`group-${i}`)) return `group-${i}`;
  }

  add(group: GraphGroup): void {
    const before = this.list();
    this.mount({ ...group });
    this.hooks.committed(before);
  }

  remove(id: string): void {
    const f = this.frames.get(id);
    if (!f) return;
    const before = this.list();
    this.content.remove(f.el);
    this.frames.delete(id);
    this.hooks.committed(before);
  }

  rename(id: string, title: string): void {
    const f = this.frames.get(id);
    if (!f || f.data.title === title) return;
    const before = this.list();
    f.data.title = title;
    f.title.textContent = title;
    this.hooks.committed(before);
  }

  /** Starts editing a frame's title in place (Enter keeps it, Esc gives the old one back). */
  editTitle(id: string): void {
    const f = this.frames.get(id);
    if (!f) return;
    const span = f.title;
    const old = f.data.title;
    span.contentEditable = 'true';
    span.focus();
    const range = document.createRange();
    range.selectNodeContents(span);
    const sel = window.getSelection();
    sel?.removeAllRanges();
    sel?.addRange(range);
    const finish = (keep: boolean) => {
      span.removeEventListener('keydown', onKey);
      span.removeEventListener('blur', onBlur);
      span.contentEditable = 'false';
      const title = (span.textContent ?? '').trim().slice(0, 200);
      span.textContent = old;
      if (keep && title) this.rename(id, title);
    };
    const onKey = (e: KeyboardEvent) => {
      e.stopPropagation();
      if (e.key === 'Enter') {
        e.preventDefault();
        finish(true);
      } else if (e.key === 'Escape') {
        e.preventDefault();
        finish(false);
      }
    };
    const onBlur = () => finish(true);
    span.addEventListener('keydown', onKey);
    span.addEventListener('blur', onBlur);
  }

  destroy(): void {
    for (const f of this.frames.values()) this.content.remove(f.el);
    this.frames.clear();
  }

  private mount(data: GraphGroup): void {
    const el = document.createElement('div');
    el.className = 'sd-frame';
    el.dataset.testid = 'frame';
    el.dataset.frameId = data.id;
    const header = document.createElement('div');
    header.className = 'sd-frame-header';
    const title = document.createElement('span');
    title.className = 'sd-frame-title';
    title.dataset.testid = 'frame-title';
    title.textContent = data.title;
    header.append(title);
    const handle = document.createElement('div');
    handle.className = 'sd-frame-resize';
    handle.title = 'Drag to resize the frame';
    el.append(header, handle);
    const frame: Frame = { data, el, title };
    this.frames.set(data.id, frame);
    this.place(frame);
    this.content.add(el);
    // Behind every node and connection.
    this.content.reorder(el, this.content.holder.firstChild);

    // The title bar is drawn above the nodes (styles.css), so a press on it is the frame's, never the
    // node's beneath: it picks the frame, and dragging moves it with its nodes.
    header.dataset.testid = 'frame-header';
    header.addEventListener('pointerdown', (e) => {
      if (e.button !== 0 || title.isContentEditable) return;
      e.stopPropagation();
      this.select(frame.data.id);
      this.hooks.picked(frame.data.id);
      const carried = { ids: this.hooks.nodesInside(frame.data as Rect), dx: 0, dy: 0 };
      this.drag(
        e,
        header,
        async (dx, dy) => {
          frame.data.x += dx;
          frame.data.y += dy;
          carried.dx += dx;
          carried.dy += dy;
          this.place(frame);
          await this.hooks.moveNodes(carried.ids, dx, dy);
        },
        carried,
      );
    });
    handle.addEventListener('pointerdown', (e) => {
      if (e.button !== 0) return;
      e.stopPropagation();
      this.drag(e, handle, async (dx, dy) => {
        frame.data.width = Math.max(MIN_W, frame.data.width + dx);
        frame.data.height = Math.max(MIN_H, frame.data.height + dy);
        this.place(frame);
      });
    });
    header.addEventListener('dblclick', (e) => {
      e.stopPropagation();
      this.editTitle(frame.data.id);
    });
    header.addEventListener('contextmenu', (e) => {
      e.preventDefault();
      e.stopPropagation();
      this.hooks.contextMenu(frame.data.id, e);
    });
  }

  private place(f: Frame): void {
    const { x, y, width, height, color } = f.data;
    Object.assign(f.el.style, { left: `${x}px`, top: `${y}px`, width: `${width}px`, height: `${height}px` });
    f.el.style.setProperty('--frame-color', color ?? FRAME_COLOR);
  }

  /** Follows the pointer until it is released; `step` gets each move in graph units. */
  private drag(
    start: PointerEvent,
    target: HTMLElement,
    step: (dx: number, dy: number) => Promise<void>,
    carried?: { ids: string[]; dx: number; dy: number },
  ): void {
    const before = this.list();
    let last = { x: start.clientX, y: start.clientY };
    let moved = false;
    let chain = Promise.resolve();
    target.setPointerCapture(start.pointerId);
    const onMove = (e: PointerEvent) => {
      const k = this.hooks.zoom();
      const dx = (e.clientX - last.x) / k;
      const dy = (e.clientY - last.y) / k;
      last = { x: e.clientX, y: e.clientY };
      if (dx === 0 && dy === 0) return;
      moved = true;
      chain = chain.then(() => step(dx, dy));
    };
    const onUp = () => {
      target.removeEventListener('pointermove', onMove);
      target.removeEventListener('pointerup', onUp);
      target.removeEventListener('pointercancel', onUp);
      void chain.then(() => {
        if (moved) this.hooks.committed(before, carried);
      });
    };
    target.addEventListener('pointermove', onMove);
    target.addEventListener('pointerup', onUp);
    target.addEventListener('pointercancel', onUp);
  }
}
