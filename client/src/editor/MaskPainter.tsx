/**
 * The mask painter on a Mask node: brush and eraser strokes, one colour per style, over the picture
 * the mask belongs to (the node's last preview shows it). Each stroke is one parameter edit, so the
 * editor's undo and redo cover painting; strokes are stored compactly in the node's parameters
 * (server/protocol/painting.ts) and the engine rasterises them at any size. What is drawn here is the
 * painting as the engine reads it: fill style under everything, strokes in order, the eraser painting
 * the fill back, soft borders of the feather width.
 */
import { useEffect, useRef, useState, type PointerEvent as ReactPointerEvent } from 'react';
import type { CatalogParam } from '../../../server/protocol/catalog.ts';
import { decodePoints, encodePoints, ERASER, MAX_POINTS, MAX_STROKES, STYLE_COLORS, type Stroke } from '../../../server/protocol/painting.ts';
import { withToken } from '../access-token.ts';
import type { NodeRuntime } from '../runtime.ts';
import { bridge } from './bridge.ts';
import { stopCanvas } from './ParamField.tsx';
import type { StudioNode } from './schemes.ts';

/** Width of the painting area in CSS pixels (the node's inner width). */
const WIDTH = 258;
/** The most points one stroke keeps (it is thinned further when longer). */
const STROKE_POINTS = 400;

interface Names {
  styles: string;
  fill: string;
  feather: string;
}

const colorOf = (style: number) => STYLE_COLORS[(style - 1) % STYLE_COLORS.length]!;

/** Draws fill and strokes (picture coordinates 0..1) into a context of w×h pixels. */
function drawRegions(ctx: CanvasRenderingContext2D, w: number, h: number, strokes: readonly { style: number; radius: number; xy: ArrayLike<number> }[], fill: number): void {
  ctx.fillStyle = colorOf(fill);
  ctx.fillRect(-w, -h, 3 * w, 3 * h);
  const short = Math.min(w, h);
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  for (const s of strokes) {
    const color = colorOf(s.style === ERASER ? fill : s.style);
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

export function MaskPainter({ node, rt, param }: { node: StudioNode; rt: NodeRuntime; param: CatalogParam }) {
  const names = { styles: 'styles', fill: 'fill', feather: 'feather', ...(param.ui as Partial<Names>) };
  const styles = Math.max(2, Number(node.params[names.styles] ?? 2));
  const fill = Math.min(styles, Math.max(1, Number(node.params[names.fill] ?? 1)));
  const feather = Number(node.params[names.feather] ?? 0);
  const strokes = (Array.isArray(node.params[param.name]) ? node.params[param.name] : []) as Stroke[];
  const [brush, setBrush] = useState(Math.min(2, styles));
  const [radius, setRadius] = useState(0.06);
  const [note, setNote] = useState<string | null>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const drawing = useRef<{ xy: number[]; style: number; radius: number } | null>(null);
  const hover = useRef<{ x: number; y: number } | null>(null);
  const pictureImg = useRef<HTMLImageElement | null>(null);

  // The picture under the regions: the node's last run (the plain picture, else the preview itself).
  const images = rt.result?.images ?? [];
  const under = images[1] ?? images[0];
  const aspect = under ? under.width / under.height : 4 / 3;
  const width = WIDTH;
  const height = Math.max(40, Math.round(WIDTH / aspect));
  const decoded = strokes.map((s) => ({ style: s.style, radius: s.radius, xy: decodePoints(s.points) }));

  const redraw = () => {
    const c = canvas.current;
    const ctx = c?.getContext('2d');
    if (!c || !ctx) return;
    const dpr = window.devicePixelRatio || 1;
    if (c.width !== Math.round(width * dpr)) c.width = Math.round(width * dpr);
    if (c.height !== Math.round(height * dpr)) c.height = Math.round(height * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const img = pictureImg.current;
    if (img?.complete && img.naturalWidth > 0) ctx.drawImage(img, 0, 0, width, height);
    else {
      ctx.fillStyle = '#1a1f28';
      ctx.fillRect(0, 0, width, height);
    }
    // The regions, as the engine reads them, over the picture.
    const regions = document.createElement('canvas');
    regions.width = c.width;
    regions.height = c.height;
    const rctx = regions.getContext('2d')!;
    rctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    drawRegions(rctx, width, height, drawing.current ? [...decoded, drawing.current] : decoded, fill);
    ctx.save();
    ctx.globalAlpha = img?.complete && img.naturalWidth > 0 ? 0.55 : 0.9;
    const blur = feather * Math.min(width, height);
    if (blur >= 0.3) ctx.filter = `blur(${blur.toFixed(1)}px)`;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(regions, 0, 0);
    ctx.restore();
    // The brush, where the pointer is.
    const at = hover.current;
    if (at) {
      ctx.strokeStyle = brush === ERASER ? '#ffffff' : colorOf(brush);
      ctx.lineWidth = 1.5;
      ctx.setLineDash(brush === ERASER ? [3, 3] : []);
      ctx.beginPath();
      ctx.arc(at.x * width, at.y * height, radius * Math.min(width, height), 0, 2 * Math.PI);
      ctx.stroke();
      ctx.setLineDash([]);
    }
  };

  useEffect(() => {
    if (!under) {
      pictureImg.current = null;
      redraw();
      return;
    }
    const img = new Image();
    img.onload = () => redraw();
    img.src = withToken(under.url);
    pictureImg.current = img;
    redraw();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [under?.url]);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  useEffect(redraw, [strokes, styles, fill, feather, brush, radius, width, height]);
  useEffect(() => {
    if (brush > styles) setBrush(styles);
  }, [brush, styles]);

  const pointAt = (e: ReactPointerEvent) => {
    const r = canvas.current!.getBoundingClientRect();
    return { x: Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)), y: Math.min(1, Math.max(0, (e.clientY - r.top) / r.height)) };
  };
  const points = strokes.reduce((n, s) => n + s.points.length / 4, 0);

  const commit = () => {
    const stroke = drawing.current;
    drawing.current = null;
    if (!stroke) return;
    // Points closer than a quarter of the brush add nothing to the painted shape.
    let xy = thin(stroke.xy, (stroke.radius * Math.min(width, height)) / 4 / Math.max(width, height));
    for (let spacing = 0.01; xy.length / 2 > STROKE_POINTS; spacing *= 1.5) xy = thin(xy, spacing);
    if (strokes.length >= MAX_STROKES || points + xy.length / 2 > MAX_POINTS) {
      setNote(`The painting is full (at most ${MAX_STROKES} strokes, ${MAX_POINTS} points): clear it or undo some strokes.`);
      redraw();
      return;
    }
    setNote(null);
    bridge().setParam(node.id, param.name, [...strokes, { style: stroke.style, radius: stroke.radius, points: encodePoints(xy) }], false);
  };

  return (
    <div className="sd-painter" data-testid="mask-painter" {...stopCanvas}>
      <div className="sd-painter-tools">
        {Array.from({ length: styles }, (_, i) => i + 1).map((k) => (
          <button
            key={k}
            type="button"
            className={`sd-swatch${brush === k ? ' active' : ''}`}
            data-testid={`brush-style-${k}`}
            title={`Paint style ${k}`}
            style={{ background: colorOf(k) }}
            onClick={() => setBrush(k)}
          >
            {k}
          </button>
        ))}
        <button type="button" className={`sd-swatch eraser${brush === ERASER ? ' active' : ''}`} data-testid="brush-eraser" title={`Eraser: paints style ${fill} (the fill) back`} onClick={() => setBrush(ERASER)}>
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
          value={radius}
          onChange={(e) => setRadius(Number(e.target.value))}
        />
        <button type="button" data-testid="paint-clear" title="Remove every stroke (one undo step)" disabled={strokes.length === 0} onClick={() => bridge().setParam(node.id, param.name, [], false)}>
          Clear
        </button>
      </div>
      <canvas
        ref={canvas}
        className="sd-painter-canvas"
        data-testid="paint-canvas"
        style={{ width, height }}
        onPointerDown={(e) => {
          if (e.button !== 0) return;
          e.stopPropagation();
          e.currentTarget.setPointerCapture(e.pointerId);
          const p = pointAt(e);
          drawing.current = { xy: [p.x, p.y], style: brush, radius };
          redraw();
        }}
        onPointerMove={(e) => {
          const p = pointAt(e);
          hover.current = p;
          const stroke = drawing.current;
          if (stroke) {
            const last = stroke.xy.length - 2;
            if (Math.hypot((p.x - stroke.xy[last]!) * width, (p.y - stroke.xy[last + 1]!) * height) >= 1.5) stroke.xy.push(p.x, p.y);
          }
          redraw();
        }}
        onPointerUp={commit}
        onPointerCancel={commit}
        onPointerLeave={() => {
          hover.current = null;
          if (!drawing.current) redraw();
        }}
      />
      <div className="sd-painter-status">
        {images[0] ? (
          // The mask of the last run as the engine computed it: each region in its style's colour.
          <img className="sd-painter-last" data-testid="node-result-img" src={withToken(images[0].url)} alt="the mask of the last run" title="The mask of the last run, as the engine computed it" draggable={false} />
        ) : null}
        <span data-testid="paint-status">
          {note ?? `${strokes.length} stroke${strokes.length === 1 ? '' : 's'} · unpainted: style ${fill}${under ? '' : ' · run once to paint over the picture'}`}
        </span>
        {rt.result?.text ? (
          // The size the mask is drawn at (the picture's), whatever the painter's size on screen.
          <span className="sd-painter-size" data-testid="media-size">
            {rt.result.text}
          </span>
        ) : null}
      </div>
    </div>
  );
}
