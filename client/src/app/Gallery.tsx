/**
 * The results panel (final images of the server's job history, grouped by run) and the comparison view
 * (chosen results next to each other at the same size, or two of them under a slider).
 */
import { useMemo, useState, type PointerEvent as ReactPointerEvent } from 'react';
import { withToken } from '../access-token.ts';
import { useObservable } from '../runtime.ts';
import { Modal } from './dialogs.tsx';
import type { GalleryImage } from './gallery.ts';
import { useStudio } from './studio-store.ts';

function timeOf(at: number): string {
  return new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

interface Run {
  jobId: string;
  graphLabel: string;
  at: number;
  images: GalleryImage[];
}

/** Images grouped by the run that made them, newest run first (the list is newest first). */
function byRun(images: GalleryImage[]): Run[] {
  const runs = new Map<string, Run>();
  for (const img of images) {
    const run = runs.get(img.jobId) ?? { jobId: img.jobId, graphLabel: img.graphLabel, at: img.at, images: [] };
    // Within a run, keep the order the outputs finished in.
    run.images.unshift(img);
    runs.set(img.jobId, run);
  }
  return [...runs.values()];
}

export function GalleryPanel(props: {
  onCompare: (images: GalleryImage[]) => void;
  onDownload: (image: GalleryImage) => void;
  /** Opens the graph a run ran, as a new graph in the editor. */
  onOpenRun: (jobId: string) => void;
  onClose: () => void;
}) {
  const { gallery } = useStudio();
  const images = useObservable(gallery.images);
  const [picked, setPicked] = useState<ReadonlySet<string>>(new Set());
  const runs = useMemo(() => byRun(images), [images]);
  const selected = images.filter((i) => picked.has(i.key));
  const toggle = (key: string) =>
    setPicked((s) => {
      const next = new Set(s);
      if (!next.delete(key)) next.add(key);
      return next;
    });
  return (
    <aside className="sd-gallery" data-testid="gallery">
      <header>
        <span>
          Results <span className="muted">{images.length || ''}</span>
        </span>
        <span className="sd-gallery-actions">
          <button
            type="button"
            data-testid="gallery-compare"
            disabled={selected.length < 2}
            onClick={() => props.onCompare([...selected].reverse())}
            title="Show the checked results side by side"
          >
            Compare{selected.length ? ` ${selected.length}` : ''}
          </button>
          <button type="button" className="sd-link" onClick={props.onClose} title="Hide">
            ✕
          </button>
        </span>
      </header>
      {images.length === 0 ? <p className="muted">Final images of your runs appear here. Check two or more to compare them side by side.</p> : null}
      <div className="sd-gallery-list">
        {runs.map((run) => (
          <GalleryRun
            key={run.jobId}
            run={run}
            picked={picked}
            toggle={toggle}
            onCompare={props.onCompare}
            onDownload={props.onDownload}
            onOpenRun={props.onOpenRun}
          />
        ))}
      </div>
      {images.length > 0 ? (
        <footer>
          <button type="button" className="sd-link" onClick={() => gallery.clear()} title="Empty the list (the files stay on the server)">
            Clear list
          </button>
        </footer>
      ) : null}
    </aside>
  );
}

/** One run's results under its title, time, and what can be done with the run as a whole. */
function GalleryRun(props: {
  run: Run;
  picked: ReadonlySet<string>;
  toggle(key: string): void;
  onCompare: (images: GalleryImage[]) => void;
  onDownload: (image: GalleryImage) => void;
  onOpenRun: (jobId: string) => void;
}) {
  const { run } = props;
  return (
    <section className="sd-gallery-run" data-testid="gallery-run" data-job-id={run.jobId}>
      <h4>
        <span className="sd-gallery-graph" title={run.graphLabel}>
          {run.graphLabel}
        </span>
        <time>{timeOf(run.at)}</time>
        <button
          type="button"
          className="sd-link"
          data-testid="gallery-open-graph"
          onClick={() => props.onOpenRun(run.jobId)}
          title="Open the graph this run ran, as a new graph"
        >
          Open graph
        </button>
        {run.images.length >= 2 ? (
          <button
            type="button"
            className="sd-link"
            data-testid="gallery-compare-run"
            onClick={() => props.onCompare(run.images)}
            title="Compare the results of this run"
          >
            Compare all
          </button>
        ) : null}
      </h4>
      <ul>
        {run.images.map((img) => (
          <GalleryItem
            key={img.key}
            img={img}
            picked={props.picked.has(img.key)}
            toggle={props.toggle}
            onCompare={props.onCompare}
            onDownload={props.onDownload}
          />
        ))}
      </ul>
    </section>
  );
}

function GalleryItem(props: {
  img: GalleryImage;
  picked: boolean;
  toggle(key: string): void;
  onCompare: (images: GalleryImage[]) => void;
  onDownload: (image: GalleryImage) => void;
}) {
  const { gallery } = useStudio();
  const { img } = props;
  return (
    <li className={props.picked ? 'picked' : ''} data-testid="gallery-item" data-node-id={img.nodeId}>
      <input type="checkbox" data-testid="gallery-select" checked={props.picked} onChange={() => props.toggle(img.key)} title="Choose for comparison" />
      <button type="button" className="sd-gallery-thumb" onClick={() => props.onCompare([img])} title="View large">
        <img src={withToken(img.url)} alt={img.title} loading="lazy" draggable={false} />
      </button>
      <div className="sd-gallery-meta">
        <span className="sd-gallery-title" title={img.title}>
          {img.title}
        </span>
        <span className="muted">
          {img.width}×{img.height} · {timeOf(img.at)}
        </span>
        <span>
          <button
            type="button"
            className="sd-link"
            data-testid="gallery-download"
            onClick={() => props.onDownload(img)}
            title="Download as PNG with the run's graph embedded"
          >
            PNG
          </button>
          <button type="button" className="sd-link" onClick={() => gallery.remove([img.key])} title="Remove from the list (the file stays on the server)">
            Remove
          </button>
        </span>
      </div>
    </li>
  );
}

export function CompareView(props: { images: GalleryImage[]; onDownload: (image: GalleryImage) => void; onClose: () => void }) {
  const { images } = props;
  const [mode, setMode] = useState<'side' | 'slider'>('side');
  // Every frame gets the first image's shape, so pictures of one size line up exactly and others
  // are letterboxed rather than stretched.
  const aspect = `${images[0]?.width ?? 1} / ${images[0]?.height ?? 1}`;
  const title = images.length === 1 ? images[0].title : `Compare ${images.length} results`;
  return (
    <Modal title={title} onClose={props.onClose} testId="compare-view" wide="full">
      {images.length === 2 ? (
        <div className="sd-compare-modes" role="group" aria-label="Comparison mode">
          <button type="button" aria-pressed={mode === 'side'} className={mode === 'side' ? 'primary' : ''} onClick={() => setMode('side')}>
            Side by side
          </button>
          <button
            type="button"
            aria-pressed={mode === 'slider'}
            className={mode === 'slider' ? 'primary' : ''}
            data-testid="compare-mode-slider"
            onClick={() => setMode('slider')}
          >
            Slider
          </button>
        </div>
      ) : null}
      {mode === 'slider' && images.length === 2 ? (
        <CompareSlider a={images[0]} b={images[1]} aspect={aspect} />
      ) : (
        <div className="sd-compare-grid" style={{ gridTemplateColumns: `repeat(${Math.min(images.length, 4)}, minmax(0, 1fr))` }}>
          {images.map((img) => (
            <figure key={img.key} className="sd-compare-item" data-testid="compare-item" data-node-id={img.nodeId}>
              <div className="sd-compare-frame" style={{ aspectRatio: aspect }}>
                <img src={withToken(img.url)} alt={img.title} draggable={false} />
              </div>
              <figcaption>
                <strong>{img.title}</strong>
                <span className="muted">
                  {img.graphLabel} · {timeOf(img.at)} · {img.width}×{img.height}
                </span>
                <button type="button" className="sd-link" onClick={() => props.onDownload(img)}>
                  Download PNG
                </button>
              </figcaption>
            </figure>
          ))}
        </div>
      )}
      <div className="sd-actions">
        <button type="button" onClick={props.onClose}>
          Close
        </button>
      </div>
    </Modal>
  );
}

/** Two results on top of each other; dragging on the pictures (or the slider) moves the divider. */
function CompareSlider({ a, b, aspect }: { a: GalleryImage; b: GalleryImage; aspect: string }) {
  const [pos, setPos] = useState(50);
  const follow = (e: ReactPointerEvent<HTMLDivElement>) => {
    const r = e.currentTarget.getBoundingClientRect();
    setPos(Math.round(Math.max(0, Math.min(100, (100 * (e.clientX - r.left)) / r.width))));
  };
  return (
    <div className="sd-compare-slider-wrap">
      <div
        className="sd-compare-slider"
        style={{ aspectRatio: aspect }}
        data-testid="compare-slider"
        data-pos={pos}
        onPointerDown={(e) => {
          e.currentTarget.setPointerCapture(e.pointerId);
          follow(e);
        }}
        onPointerMove={(e) => {
          if (e.currentTarget.hasPointerCapture(e.pointerId)) follow(e);
        }}
      >
        <img src={withToken(a.url)} alt={a.title} draggable={false} />
        <img src={withToken(b.url)} alt={b.title} draggable={false} style={{ clipPath: `inset(0 0 0 ${pos}%)` }} />
        <div className="sd-compare-divider" style={{ left: `${pos}%` }} />
      </div>
      <input
        type="range"
        min={0}
        max={100}
        value={pos}
        onChange={(e) => setPos(Number(e.target.value))}
        aria-label="Divider position"
        data-testid="compare-range"
      />
      <div className="sd-compare-labels">
        <span>
          ← {a.title} · {timeOf(a.at)}
        </span>
        <span>
          {b.title} · {timeOf(b.at)} →
        </span>
      </div>
    </div>
  );
}
