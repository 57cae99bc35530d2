/**
 * The mask painter on a Mask node: brush and eraser strokes, one colour per style, over the picture
 * the mask belongs to (the node's last preview shows it). Each stroke is one parameter edit, so the
 * editor's undo and redo cover painting; strokes are stored compactly in the node's parameters
 * (server/protocol/painting.ts) and the engine rasterises them at any size. What is drawn here is the
 * painting as the engine reads it: fill style under everything, strokes in order, the eraser painting
 * the fill back, soft borders of the feather width.
 */
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, type PointerEvent as ReactPointerEvent } from 'react';
import type { CatalogParam } from '../../../server/protocol/catalog.ts';
import { decodePoints, encodePoints, ERASER, MAX_POINTS, MAX_STROKES, StrokesSchema, styleColor, type Stroke } from '../../../server/protocol/painting.ts';
import { withToken } from '../access-token.ts';
import type { NodeRuntime } from '../runtime.ts';
import { useNodeEnv } from './bridge.ts';
import { stopCanvas } from './ParamField.tsx';

/** Width of the painting area in CSS pixels (the node's inner width). */
const WIDTH = 258;
/** The most points one stroke keeps (it is thinned further when longer). */
const STROKE_POINTS = 400;
const NO_STROKES: readonly Stroke[] = [];

interface Names {
  styles: string;
  fill: string;
  feather: string;
}

interface Decoded {
  style: number;
  radius: number;
  xy: ArrayLike<number>;
}

/**
 * The strokes a parameter holds, checked as the engine checks them; bad data (a graph edited by hand,
 * an older studio) paints nothing and says what is wrong rather than taking the node down.
 */
function readStrokes(value: unknown): { strokes: readonly Stroke[]; problem: string | null } {
  if (value === undefined) return { strokes: NO_STROKES, problem: null };
  const checked = StrokesSchema.safeParse(value);
  if (checked.success) return { strokes: checked.data, problem: null };
  const issue = checked.error.issues[0]!;
  const [index, ...field] = issue.path;
  const where = typeof index === 'number' ? `stroke ${index + 1}${field.length ? ` (${field.join('.')})` : ''}: ` : '';
  return { strokes: NO_STROKES, problem: `The painting cannot be read, ${where}${issue.message}. Clear it, or undo the edit that made it.` };
}

/** The status line under the painter when nothing more urgent is to be said. */
function paintStatus(strokes: number, fill: number, styles: number, picture: boolean): string {
  const unpainted = `unpainted: style ${fill}${fill > styles ? ` (the mask has only ${styles} styles)` : ''}`;
  return `${strokes} stroke${strokes === 1 ? '' : 's'} · ${unpainted}${picture ? '' : ' · run once to paint over the picture'}`;
}

/** Draws fill and strokes (picture coordinates 0..1) into a context of w×h pixels; a style beyond `styles` is grey. */
function drawRegions(ctx: CanvasRenderingContext2D, w: number, h: number, strokes: readonly Decoded[], fill: number, styles: number, over: boolean): void {
  if (!over) {
    ctx.fillStyle = styleColor(fill, styles);
    ctx.fillRect(-w, -h, 3 * w, 3 * h);
  }
  drawStrokes(ctx, w, h, strokes, fill, styles);
}

/** The strokes alone, each in its style's colour (the eraser's is the fill's). */
function drawStrokes(ctx: CanvasRenderingContext2D, w: number, h: number, strokes: readonly Decoded[], fill: number, styles: number): void {
  const short = Math.min(w, h);
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  for (const s of strokes) {
    const color = styleColor(s.style === ERASER ? fill : s.style, styles);
    const r = s.radius * short;
    if (s.xy.length < 2) continue;
    if (s.xy.length === 2) {
      ctx.fillStyle = color;
      ctx.beginPath();
      ctx.arc(s.xy[0]! * w, s.xy[1]! * h, r, 0, 2 * Math.PI);
      ctx.fill();
      continue;
    }
    ctx.strokeStyle = color;
    ctx.lineWidth = 2 * r;
    ctx.beginPath();
    ctx.moveTo(s.xy[0]! * w, s.xy[1]! * h);
    for (let i = 2; i < s.xy.length; i += 2) ctx.lineTo(s.xy[i]! * w, s.xy[i + 1]! * h);
    ctx.stroke();
  }
}

/** A canvas of w×h device pixels, reused when it already has that size. */
function sized(c: HTMLCanvasElement | null, w: number, h: number): HTMLCanvasElement {
  const out = c ?? document.createElement('canvas');
  if (out.width !== w) out.width = w;
  if (out.height !== h) out.height = h;
  return out;
}

/** Drops points closer than `spacing` (picture units) to the last kept one, keeping the last point. */
function thin(xy: number[], spacing: number): number[] {
  if (xy.length <= 4) return xy;
  const out = [xy[0]!, xy[1]!];
  for (let i = 2; i < xy.length - 2; i += 2) {
    if (Math.hypot(xy[i]! - out[out.length - 2]!, xy[i + 1]! - out[out.length - 1]!) >= spacing) out.push(xy[i]!, xy[i + 1]!);
  }
  out.push(xy[xy.length - 2]!, xy[xy.length - 1]!);
  return out;
}

/** What a painter paints: the node's id and parameters (a Mask node on the canvas, or the simple form's copy of it). */
export interface PainterTarget {
  nodeId: string;
  params: Record<string, unknown>;
}

/** The Mask node's settings the painter reads: style count, fill, feather, and whether it paints over derived regions. */
function painterSettings(params: Record<string, unknown>, param: CatalogParam) {
  const names = { styles: 'styles', fill: 'fill', feather: 'feather', ...(param.ui as Partial<Names>) };
  const styles = Math.max(2, Number(params[names.styles] ?? 2));
  // Not clamped to `styles`: the engine refuses a fill beyond them, so the painter shows it as it is (grey).
  const fill = Math.max(1, Number(params[names.fill] ?? 1));
  const feather = Number(params[names.feather] ?? 0);
  // Painting over regions the node derives (a words mask): they are its second picture, and no fill is drawn.
  const overWhen = (param.ui as { over?: Record<string, unknown[]> } | undefined)?.over;
  const over = overWhen !== undefined && Object.entries(overWhen).every(([k, values]) => values.includes(params[k]));
  return { styles, fill, feather, over };
}

interface Scene {
  width: number;
  height: number;
  decoded: Decoded[];
  fill: number;
  styles: number;
  feather: number;
  over: boolean;
  brush: number;
  radius: number;
  underUrl: string | undefined;
}

/**
 * The painter's canvas drawing: picture, the committed strokes' regions (cached, blurred by the feather),
 * the stroke being drawn and the brush outline, redrawn at most once a frame with the newest state.
 */
function usePaintCanvas(scene: Scene) {
  const { width, height, decoded, fill, styles, feather, over, brush, radius, underUrl } = scene;
  const canvas = useRef<HTMLCanvasElement>(null);
  const drawing = useRef<(Decoded & { xy: number[] }) | null>(null);
  // A stroke handed to the editor, drawn until the strokes come back with it.
  const committed = useRef<Decoded | null>(null);
  const hover = useRef<{ x: number; y: number } | null>(null);
  const pictureImg = useRef<HTMLImageElement | null>(null);
  // The committed strokes, blurred by the feather: built when they (or fill, styles, size) change.
  const regions = useRef<HTMLCanvasElement | null>(null);
  const layer = useRef<{ canvas: HTMLCanvasElement | null; valid: boolean }>({ canvas: null, valid: false });
  const frame = useRef(0);

  /** Draws the regions of the committed strokes, blurred, into the layer canvas (device pixels). */
  const buildLayer = (pw: number, ph: number, dpr: number) => {
    const reg = (regions.current = sized(regions.current, pw, ph));
    const rctx = reg.getContext('2d')!;
    rctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    rctx.clearRect(0, 0, width, height);
    drawRegions(rctx, width, height, decoded, fill, styles, over);
    const out = sized(layer.current.canvas, pw, ph);
    const ctx = out.getContext('2d')!;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, pw, ph);
    const blur = feather * Math.min(width, height);
    ctx.filter = blur >= 0.3 ? `blur(${blur.toFixed(1)}px)` : 'none';
    ctx.drawImage(reg, 0, 0);
    ctx.filter = 'none';
    layer.current = { canvas: out, valid: true };
  };

  /** Picture, cached regions, the stroke being drawn (unblurred) and the brush circle. */
  const redraw = () => {
    const c = canvas.current;
    const ctx = c?.getContext('2d');
    if (!c || !ctx) return;
    const dpr = window.devicePixelRatio || 1;
    const pw = Math.round(width * dpr);
    const ph = Math.round(height * dpr);
    if (c.width !== pw) c.width = pw;
    if (c.height !== ph) c.height = ph;
    if (!layer.current.valid || layer.current.canvas?.width !== pw || layer.current.canvas.height !== ph) buildLayer(pw, ph, dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const img = pictureImg.current;
    const shown = Boolean(img?.complete && img.naturalWidth > 0);
    if (shown) ctx.drawImage(img!, 0, 0, width, height);
    else {
      ctx.fillStyle = '#1a1f28';
      ctx.fillRect(0, 0, width, height);
    }
    // The regions, as the engine reads them, over the picture.
    ctx.save();
    ctx.globalAlpha = shown ? 0.55 : 0.9;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(layer.current.canvas!, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const stroke = drawing.current ?? committed.current;
    if (stroke) drawStrokes(ctx, width, height, [stroke], fill, styles);
    ctx.restore();
    drawBrush(ctx, hover.current, brush, radius, styles, width, height);
  };

  // Redraws at most once a frame, with the newest state (pointer events come faster than frames).
  const latestRedraw = useRef(redraw);
  useLayoutEffect(() => {
    latestRedraw.current = redraw;
  });
  // Stable: it reads only refs, so the effects below run when what they draw changes, not every render.
  const schedule = useCallback(() => {
    if (frame.current) return;
    frame.current = requestAnimationFrame(() => {
      frame.current = 0;
      latestRedraw.current();
    });
  }, []);
  useEffect(() => () => cancelAnimationFrame(frame.current), []);
  usePicture(underUrl, pictureImg, schedule);
  // The cached mask layer is stale once the strokes, the styles or the size change.
  useEffect(() => {
    layer.current.valid = false;
    committed.current = null;
    schedule();
  }, [decoded, styles, fill, feather, over, width, height, schedule]);
  // A new brush or radius redraws the brush outline.
  useEffect(() => schedule(), [brush, radius, schedule]);
  return { canvas, drawing, committed, hover, schedule };
}

/** The brush outline where the pointer is (dashed for the eraser). */
function drawBrush(
  ctx: CanvasRenderingContext2D,
  at: { x: number; y: number } | null,
  brush: number,
  radius: number,
  styles: number,
  w: number,
  h: number,
): void {
  if (!at) return;
  ctx.strokeStyle = brush === ERASER ? '#ffffff' : styleColor(brush, styles);
  ctx.lineWidth = 1.5;
  ctx.setLineDash(brush === ERASER ? [3, 3] : []);
  ctx.beginPath();
  ctx.arc(at.x * w, at.y * h, radius * Math.min(w, h), 0, 2 * Math.PI);
  ctx.stroke();
  ctx.setLineDash([]);
}

/** Loads the picture under the painting into `img`, redrawing when it arrives. */
function usePicture(url: string | undefined, img: { current: HTMLImageElement | null }, schedule: () => void): void {
  useEffect(() => {
    if (url === undefined) {
      img.current = null;
      schedule();
      return;
    }
    const picture = new Image();
    picture.onload = schedule;
    picture.src = withToken(url);
    img.current = picture;
    schedule();
    return () => {
      picture.onload = null;
    };
  }, [url, img, schedule]);
}

/** Swatches of the styles, the eraser, the brush size and Clear. */
function PainterTools(p: {
  styles: number;
  fill: number;
  brush: number;
  radius: number;
  canClear: boolean;
  setBrush(b: number): void;
  setRadius(r: number): void;
  clear(): void;
}) {
  return (
    <div className="sd-painter-tools">
      {Array.from({ length: p.styles }, (_, i) => i + 1).map((k) => (
        <button
          key={k}
          type="button"
          className={`sd-swatch${p.brush === k ? ' active' : ''}`}
          data-testid={`brush-style-${k}`}
          title={`Paint style ${k}`}
          style={{ background: styleColor(k, p.styles) }}
          onClick={() => p.setBrush(k)}
        >
          {k}
        </button>
      ))}
      <button
        type="button"
        className={`sd-swatch eraser${p.brush === ERASER ? ' active' : ''}`}
        data-testid="brush-eraser"
        title={`Eraser: paints style ${p.fill} (the fill) back`}
        onClick={() => p.setBrush(ERASER)}
      >
        ⌫
      </button>
      <input
        type="range"
        className="sd-brush-size"
        data-testid="brush-size"
        title="Brush size"
        min={0.01}
        max={0.3}
        step={0.005}
        value={p.radius}
        onChange={(e) => p.setRadius(Number(e.target.value))}
      />
      <button type="button" data-testid="paint-clear" title="Remove every stroke (one undo step)" disabled={!p.canClear} onClick={p.clear}>
        Clear
      </button>
    </div>
  );
}

/** Under the painter: the mask of the last run, the status line and the size the mask is drawn at. */
function PainterStatus({ rt, line }: { rt: NodeRuntime; line: string }) {
  const last = rt.result?.images?.[0];
  return (
    <div className="sd-painter-status">
      {last ? (
        // The mask of the last run as the engine computed it: each region in its style's colour.
        <img
          className="sd-painter-last"
          data-testid="node-result-img"
          src={withToken(last.url)}
          alt="the mask of the last run"
          title="The mask of the last run, as the engine computed it"
          draggable={false}
        />
      ) : null}
      <span data-testid="paint-status">{line}</span>
      {rt.result?.text ? (
        // The size the mask is drawn at (the picture's), whatever the painter's size on screen.
        <span className="sd-painter-size" data-testid="media-size">
          {rt.result.text}
        </span>
      ) : null}
    </div>
  );
}

/** The thinned stroke to store, or why it cannot be added (the painting is full). */
function finishStroke(stroke: Decoded & { xy: number[] }, strokes: readonly Stroke[], points: number, width: number, height: number): Decoded | string {
  // Points closer than a quarter of the brush add nothing to the painted shape.
  let xy = thin(stroke.xy, (stroke.radius * Math.min(width, height)) / 4 / Math.max(width, height));
  for (let spacing = 0.01; xy.length / 2 > STROKE_POINTS; spacing *= 1.5) xy = thin(xy, spacing);
  if (strokes.length >= MAX_STROKES || points + xy.length / 2 > MAX_POINTS) {
    return `The painting is full (at most ${MAX_STROKES} strokes, ${MAX_POINTS} points): clear it or undo some strokes.`;
  }
  return { style: stroke.style, radius: stroke.radius, xy };
}

/**
 * The painter of a Mask node's painting parameter: `target` holds its parameters (a canvas node, or the
 * simple form's graph node), `rt` its last run (the picture under the painting), `width` its size on screen.
 */
export function MaskPainter({ target, rt, param, width = WIDTH }: { target: PainterTarget; rt: NodeRuntime; param: CatalogParam; width?: number }) {
  const { styles, fill, feather, over } = painterSettings(target.params, param);
  const raw = target.params[param.name];
  const { strokes, problem } = useMemo(() => readStrokes(raw), [raw]);
  const decoded = useMemo<Decoded[]>(() => strokes.map((s) => ({ style: s.style, radius: s.radius, xy: decodePoints(s.points) })), [strokes]);
  const [brush, setBrush] = useState(Math.min(2, styles));
  const [radius, setRadius] = useState(0.06);
  // "The painting is full", for the strokes it was said about (Clear or undo makes it go).
  const [full, setFull] = useState<{ strokes: readonly Stroke[]; note: string } | null>(null);
  const note = problem ?? (full?.strokes === strokes ? full.note : null);
  // The picture under the regions: the node's last run (the plain picture, else the preview itself).
  const images = rt.result?.images ?? [];
  const under = images[1] ?? images[0];
  const height = Math.max(40, Math.round(width / (under ? under.width / under.height : 4 / 3)));
  const paint = usePaintCanvas({ width, height, decoded, fill, styles, feather, over, brush, radius, underUrl: under?.url });
  const { canvas, drawing, committed, hover, schedule } = paint;
  useEffect(() => {
    if (brush > styles) setBrush(styles);
  }, [brush, styles]);
  const pointAt = (e: ReactPointerEvent) => {
    const r = canvas.current!.getBoundingClientRect();
    return { x: Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)), y: Math.min(1, Math.max(0, (e.clientY - r.top) / r.height)) };
  };
  const points = useMemo(() => strokes.reduce((n, s) => n + s.points.length / 4, 0), [strokes]);
  const { bridge } = useNodeEnv();
  const setStrokes = (next: Stroke[]) => bridge.setParam(target.nodeId, param.name, next, false);

  const commit = () => {
    const stroke = drawing.current;
    drawing.current = null;
    if (!stroke) return;
    const done = finishStroke(stroke, strokes, points, width, height);
    if (typeof done === 'string') {
      setFull({ strokes, note: done });
      schedule();
      return;
    }
    committed.current = done;
    setStrokes([...strokes, { style: done.style, radius: done.radius, points: encodePoints(done.xy as number[]) }]);
  };
  /** A stroke the pointer gave up on (cancelled, capture lost without a pointerup) is not painted. */
  const cancel = () => {
    if (!drawing.current) return;
    drawing.current = null;
    schedule();
  };

  return (
    <div className="sd-painter" data-testid="mask-painter" {...stopCanvas}>
      <PainterTools {...{ styles, fill, brush, radius, setBrush, setRadius }} canClear={Boolean(problem) || strokes.length > 0} clear={() => setStrokes([])} />
      <canvas
        ref={canvas}
        className="sd-painter-canvas"
        data-testid="paint-canvas"
        style={{ width, height }}
        onPointerDown={(e) => {
          if (e.button !== 0) return;
          e.stopPropagation();
          // Strokes added to a painting that cannot be read would replace it: Clear (or undo) first.
          if (problem) return;
          e.currentTarget.setPointerCapture(e.pointerId);
          const p = pointAt(e);
          drawing.current = { xy: [p.x, p.y], style: brush, radius };
          schedule();
        }}
        onPointerMove={(e) => {
          const p = pointAt(e);
          hover.current = p;
          const stroke = drawing.current;
          if (stroke) {
            const last = stroke.xy.length - 2;
            if (Math.hypot((p.x - stroke.xy[last]!) * width, (p.y - stroke.xy[last + 1]!) * height) >= 1.5) stroke.xy.push(p.x, p.y);
          }
          schedule();
        }}
        onPointerUp={commit}
        onPointerCancel={cancel}
        onLostPointerCapture={cancel}
        onPointerLeave={() => {
          hover.current = null;
          if (!drawing.current) schedule();
        }}
      />
      <PainterStatus rt={rt} line={note ?? paintStatus(strokes.length, fill, styles, Boolean(under))} />
    </div>
  );
}
