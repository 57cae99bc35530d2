/** The canvas the editor draws into, with the empty-graph hint and file dropping. */
import { useState, type RefObject } from 'react';

export function CanvasArea(props: {
  canvasRef: RefObject<HTMLDivElement | null>;
  ready: boolean;
  empty: boolean;
  onOpenTemplates(): void;
  onDropFile(file: File): void;
}) {
  const [dropping, setDropping] = useState(false);
  return (
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
        props.onDropFile(file);
      }}
    >
      <div ref={props.canvasRef} className="sd-canvas" data-testid="canvas" data-ready={props.ready ? 'true' : 'false'} />
      {props.ready && props.empty ? (
        <div className="sd-empty-hint">
          <p>Empty graph.</p>
          <p>Double-click or right-click the canvas to add a node, or open a template.</p>
          <button type="button" onClick={props.onOpenTemplates}>
            Open a template…
          </button>
        </div>
      ) : null}
      {dropping ? <div className="sd-drop-overlay">Drop a graph .json file, or a PNG downloaded from the studio, to open its graph</div> : null}
    </div>
  );
}
