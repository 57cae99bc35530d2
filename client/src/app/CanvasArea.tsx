/**
 * Where the shown graph tab's canvas goes, with the first-open hint, the empty-graph hint and file
 * dropping. Each graph tab draws into a canvas element of its own, which lives as long as the tab:
 * shown, it is put in here; hidden, it leaves the page (its nodes are then not in the document).
 */
import { useEffect, useLayoutEffect, useRef, useState } from 'react';
import type { Position } from '../graph-io.ts';

const HINT_KEY = 'dualstyle.hint.closed';

function hintClosed(): boolean {
  try {
    return localStorage.getItem(HINT_KEY) === '1';
  } catch {
    return false;
  }
}

export function CanvasArea(props: {
  /** The shown tab's canvas element (the editor's). */
  canvas: HTMLDivElement;
  ready: boolean;
  empty: boolean;
  /** Show the what-to-do-first line (first visit of this browser, until it is closed). */
  welcome: boolean;
  onOpenTemplates(): void;
  onDropFile(file: File, at: Position): void;
}) {
  const [dropping, setDropping] = useState(false);
  const [closed, setClosed] = useState(hintClosed);
  const host = useRef<HTMLDivElement>(null);
  const { canvas, ready } = props;
  useLayoutEffect(() => {
    host.current!.appendChild(canvas);
    return () => canvas.remove();
  }, [canvas]);
  useEffect(() => {
    canvas.dataset.ready = ready ? 'true' : 'false';
  }, [canvas, ready]);
  // A drop a node takes itself (a picture on Load Image) never reaches the canvas's handler: whatever
  // takes it, the overlay goes (window capture sees every drop first).
  useEffect(() => {
    if (!dropping) return;
    const done = () => setDropping(false);
    window.addEventListener('drop', done, true);
    window.addEventListener('dragend', done, true);
    return () => {
      window.removeEventListener('drop', done, true);
      window.removeEventListener('dragend', done, true);
    };
  }, [dropping]);
  return (
    <div className="sd-canvas-col">
      {props.welcome && !closed ? (
        <div className="sd-hint" data-testid="first-hint" role="note">
          <span>
            Press <b>Run</b> to see the demo; load your own image in <b>Load Image</b>; fetch a real model with <code>npm run fetch-model</code> and set it in{' '}
            <b>Load Model</b>. Press <kbd>?</kbd> for shortcuts.
          </span>
          <button
            type="button"
            className="sd-link"
            title="Hide this line"
            onClick={() => {
              setClosed(true);
              try {
                localStorage.setItem(HINT_KEY, '1');
              } catch {
                /* shown again next time */
              }
            }}
          >
            ✕
          </button>
        </div>
      ) : null}
      <div
        className={`sd-canvas-wrap${dropping ? ' dropping' : ''}`}
        onDragOver={(e) => {
          if (![...e.dataTransfer.types].includes('Files')) return;
          e.preventDefault();
          setDropping(true);
        }}
        onDragLeave={() => setDropping(false)}
        onDrop={(e) => {
          setDropping(false);
          const file = e.dataTransfer.files[0];
          if (!file) return;
          e.preventDefault();
          props.onDropFile(file, { x: e.clientX, y: e.clientY });
        }}
      >
        <div ref={host} className="sd-canvas-host" />
        {props.ready && props.empty ? (
          <div className="sd-empty-hint">
            <p>Empty graph.</p>
            <p>Double-click or right-click the canvas to add a node, drop an image or a graph file here, or open a template.</p>
            <button type="button" onClick={props.onOpenTemplates}>
              Open a template…
            </button>
          </div>
        ) : null}
        {dropping ? (
          <div className="sd-drop-overlay">
            Drop a picture to load it in a new Load Image node, or a graph file (.json, or a PNG from the studio) to open it
          </div>
        ) : null}
      </div>
    </div>
  );
}
