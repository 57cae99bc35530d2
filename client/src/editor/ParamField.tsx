/** One parameter control, chosen by the catalog's `kind`. */
import { useEffect, useRef, useState, type ReactNode, type SyntheticEvent } from 'react';
import type { CatalogParam } from '../../../server/protocol/catalog.ts';
import { withToken } from '../access-token.ts';
import { uploadUrl } from '../api.ts';
import { useObservable } from '../runtime.ts';
import { bridge, uploadedImages } from './bridge.ts';

/** Keeps pointer and wheel gestures inside a control from dragging or zooming the canvas. */
export const stopCanvas = {
  onPointerDown: (e: SyntheticEvent) => e.stopPropagation(),
  onDoubleClick: (e: SyntheticEvent) => e.stopPropagation(),
  onWheel: (e: SyntheticEvent) => e.stopPropagation(),
  onContextMenu: (e: SyntheticEvent) => e.stopPropagation(),
};

interface Props {
  nodeId: string;
  param: CatalogParam;
  value: unknown;
  issues: string[];
}

interface Preset {
  label: string;
  value: string;
}

function presetsOf(param: CatalogParam): Preset[] {
  const raw = param.ui?.presets;
  if (!Array.isArray(raw)) return [];
  return raw.flatMap((p): Preset[] => {
    if (typeof p === 'string') return [{ label: p, value: p }];
    if (p && typeof p === 'object' && typeof (p as Preset).value === 'string') {
      const { label, value } = p as Preset;
      return [{ label: typeof label === 'string' ? label : value, value }];
    }
    return [];
  });
}

export function ParamField({ nodeId, param, value, issues }: Props) {
  const set = (v: unknown, coalesce = false) => bridge().setParam(nodeId, param.name, v, coalesce);
  const tip = [param.description, param.optional ? '(optional)' : ''].filter(Boolean).join(' ');
  const invalid = issues.length > 0;
  let control: ReactNode;
  switch (param.kind) {
    case 'number':
    case 'integer':
      control = <NumberField param={param} value={value} onChange={(v) => set(v, true)} />;
      break;
    case 'boolean':
      control = (
        <input
          type="checkbox"
          data-testid={`param-${param.name}`}
          checked={value === true}
          onChange={(e) => set(e.target.checked)}
        />
      );
      break;
    case 'enum':
      control = (
        <select data-testid={`param-${param.name}`} value={String(value ?? '')} onChange={(e) => set(e.target.value)}>
          {value === undefined || (param.options ?? []).includes(String(value)) ? null : <option value={String(value)}>{String(value)} (unknown)</option>}
          {(param.options ?? []).map((o) => (
            <option key={o} value={o}>
              {o}
            </option>
          ))}
        </select>
      );
      break;
    case 'text':
      control = <TextField param={param} value={value} onChange={(v, c) => set(v, c)} />;
      break;
    case 'image':
      control = <ImageField nodeId={nodeId} param={param} value={value} onClear={() => set(undefined)} />;
      break;
    case 'model':
      control = (
        <input
          type="text"
          data-testid={`param-${param.name}`}
          list="model-suggestions"
          placeholder="demo, or a model folder path"
          value={String(value ?? '')}
          onChange={(e) => set(e.target.value, true)}
        />
      );
      break;
    case 'string':
    default:
      control = (
        <input type="text" data-testid={`param-${param.name}`} value={value === undefined ? '' : String(value)} onChange={(e) => set(e.target.value, true)} />
      );
  }
  const inline = param.kind === 'boolean';
  return (
    <div className={`sd-param kind-${param.kind}${invalid ? ' invalid' : ''}${inline ? ' inline' : ''}`} data-testid={`control-${param.name}`} title={tip} {...stopCanvas}>
      <label className="sd-param-label">
        {param.label || param.name}
        {param.description ? <span className="sd-help" aria-label={param.description}>?</span> : null}
      </label>
      <div className="sd-param-control">{control}</div>
      {issues.map((m, i) => (
        <div key={i} className="sd-param-issue">
          {m}
        </div>
      ))}
    </div>
  );
}

function NumberField({ param, value, onChange }: { param: CatalogParam; value: unknown; onChange: (v: number) => void }) {
  const [text, setText] = useState(value === undefined || value === null ? '' : String(value));
  // Follow outside changes (undo/redo, load) unless the text already means that number.
  useEffect(() => {
    if (value === undefined || value === null) return;
    if (Number(text) !== value) setText(String(value));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [value]);
  const step = param.step ?? (param.kind === 'integer' ? 1 : 'any');
  const commit = (s: string) => {
    setText(s);
    if (s.trim() === '') return;
    const n = Number(s);
    if (!Number.isFinite(n)) return;
    onChange(n);
  };
  const slider = param.ui?.slider === true && param.min !== undefined && param.max !== undefined;
  return (
    <div className="sd-number">
      {slider ? (
        <input
          type="range"
          min={param.min}
          max={param.max}
          step={step}
          value={typeof value === 'number' ? value : Number(param.default ?? param.min)}
          onChange={(e) => commit(e.target.value)}
        />
      ) : null}
      <input
        type="number"
        data-testid={`param-${param.name}`}
        min={param.min}
        max={param.max}
        step={step}
        value={text}
        onChange={(e) => commit(e.target.value)}
      />
    </div>
  );
}

function TextField({ param, value, onChange }: { param: CatalogParam; value: unknown; onChange: (v: string, coalesce: boolean) => void }) {
  const presets = presetsOf(param);
  return (
    <div className="sd-text">
      {presets.length > 0 ? (
        <select
          className="sd-presets"
          data-testid={`presets-${param.name}`}
          value=""
          onChange={(e) => {
            const p = presets[Number(e.target.value)];
            if (p) onChange(p.value, false);
          }}
        >
          <option value="">Preset…</option>
          {presets.map((p, i) => (
            <option key={i} value={i}>
              {p.label}
            </option>
          ))}
        </select>
      ) : null}
      <textarea
        data-testid={`param-${param.name}`}
        rows={3}
        value={value === undefined ? '' : String(value)}
        onChange={(e) => onChange(e.target.value, true)}
      />
    </div>
  );
}

function ImageField({ nodeId, param, value, onClear }: { nodeId: string; param: CatalogParam; value: unknown; onClear: () => void }) {
  const uploads = useObservable(uploadedImages);
  const input = useRef<HTMLInputElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [broken, setBroken] = useState(false);
  const name = typeof value === 'string' && value !== '' ? value : null;
  const known = name ? uploads[name] : undefined;
  // Names like "builtin:sample" are not uploads: there is nothing to fetch for them.
  const src = name ? known?.url ?? (/^[A-Za-z0-9 _.-]+$/.test(name) ? uploadUrl(name) : null) : null;
  useEffect(() => setBroken(false), [src]);
  const pick = async (file: File | undefined) => {
    if (!file) return;
    setBusy(true);
    setError(null);
    try {
      await bridge().uploadImage(nodeId, param.name, file);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div
      className="sd-image"
      onDragOver={(e) => {
        if ([...e.dataTransfer.items].some((i) => i.type.startsWith('image/'))) e.preventDefault();
      }}
      onDrop={(e) => {
        const file = [...e.dataTransfer.files].find((f) => f.type.startsWith('image/'));
        if (!file) return;
        e.preventDefault();
        e.stopPropagation();
        void pick(file);
      }}
    >
      <input
        ref={input}
        type="file"
        accept="image/png,image/jpeg,image/webp"
        data-testid={`upload-${param.name}`}
        style={{ display: 'none' }}
        onChange={(e) => void pick(e.target.files?.[0])}
      />
      <div className="sd-image-row">
        <button type="button" disabled={busy} onClick={() => input.current?.click()}>
          {busy ? 'Uploading…' : name ? 'Replace…' : 'Upload image…'}
        </button>
        {name ? (
          <button type="button" className="sd-link" onClick={onClear} title="Clear the image">
            ✕
          </button>
        ) : null}
      </div>
      {name ? (
        <div className="sd-image-name" title={name}>
          {known ? `${known.fileName} · ${known.width}×${known.height}` : name}
        </div>
      ) : (
        <div className="sd-image-name muted">or drop an image here</div>
      )}
      {src && !broken ? <img className="sd-thumb" src={withToken(src)} alt={name ?? ''} onError={() => setBroken(true)} draggable={false} /> : null}
      {error ? <div className="sd-param-issue">{error}</div> : null}
    </div>
  );
}
