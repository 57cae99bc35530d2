/**
 * A result picture on a node, and the same picture large: a click on it opens it over the whole
 * window (at most its own size); Esc or a click outside the picture closes it. Drawn outside the
 * canvas (a portal), so the canvas's zoom does not scale it.
 */
import { useEffect, useState } from 'react';
import { createPortal } from 'react-dom';
import { withToken } from '../access-token.ts';

export function ResultImage(props: { image: { url: string; name: string; width: number; height: number } }) {
  const [open, setOpen] = useState(false);
  const { image } = props;
  return (
    <>
      <img
        className="sd-media-img zoomable"
        data-testid="node-result-img"
        src={withToken(image.url)}
        alt={image.name}
        title="Click to view large"
        draggable={false}
        onClick={() => setOpen(true)}
      />
      {open ? <Lightbox image={image} onClose={() => setOpen(false)} /> : null}
    </>
  );
}

export function Lightbox(props: { image: { url: string; name: string; width: number; height: number }; onClose(): void }) {
  const { image, onClose } = props;
  useEffect(() => {
    // Esc is the lightbox's alone while it is open (not the editor's, not a dialog's).
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== 'Escape') return;
      e.preventDefault();
      e.stopPropagation();
      onClose();
    };
    window.addEventListener('keydown', onKey, true);
    return () => window.removeEventListener('keydown', onKey, true);
  }, [onClose]);
  return createPortal(
    <div
      className="sd-lightbox"
      data-testid="lightbox"
      role="dialog"
      aria-label={image.name}
      onPointerDown={(e) => e.stopPropagation()}
      onClick={(e) => {
        if (e.target === e.currentTarget) onClose();
      }}
    >
      <figure>
        <img src={withToken(image.url)} alt={image.name} style={{ maxWidth: `min(${image.width}px, 92vw)`, maxHeight: `min(${image.height}px, 84vh)` }} />
        <figcaption>
          {image.name} · {image.width}×{image.height} <span className="muted">· Esc or a click outside closes</span>
        </figcaption>
      </figure>
    </div>,
    document.body,
  );
}
