/** One parameter control, chosen by the catalog's `kind`. */
import { useEffect, useRef, useState, type ReactNode, type SyntheticEvent } from 'react';
import type { CatalogParam } from '../../../server/protocol/catalog.ts';
import { withToken } from '../access-token.ts';
import { api, ApiError, uploadUrl } from '../api.ts';
import { useObservable } from '../runtime.ts';
import { rememberUpload, useNodeEnv } from './bridge.ts';
import { tokenCountLabel } from '../../../server/protocol/prompt-tokens.ts';
import { ModelPicker } from './ModelPicker.tsx';
import { presetsOf } from '../titles.ts';

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
  /** Whether the label carries simple mode's show/hide toggle (on the canvas; not in the simple form itself). */
  exposable?: boolean;
}

export function ParamField({ nodeId, param, value, issues, exposable = true }: Props) {
  const { bridge } = useNodeEnv();
  const set = (v: unknown, coalesce = false) => bridge.setParam(nodeId, param.name, v, coalesce);
  const tip = [param.description, param.optional ? '(optional)' : ''].filter(Boolean).join(' ');
  const invalid = issues.length > 0;
  let control: ReactNode;
  switch (param.kind) {
    case 'number':
    case 'integer':
      control = <NumberField param={param} value={value} onChange={(v) => set(v, true)} />;
      break;
    case 'boolean':
      control = <input type="checkbox" data-testid={`param-${param.name}`} checked={value === true} onChange={(e) => set(e.target.checked)} />;
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
      control = <TextField nodeId={nodeId} param={param} value={value} onChange={(v, c) => set(v, c)} />;
      break;
    case 'image':
      control = <ImageField nodeId={nodeId} param={param} value={value} onClear={() => set(undefined)} />;
      break;
    case 'model':
      control = <ModelPicker param={param} value={value} onChange={(v, c) => set(v, c)} />;
      break;
    case 'painting':
      // Painted on the node's picture (MaskPainter); here, how much there is, and its problems.
      control = (
        <span className="sd-param-summary" data-testid={`param-${param.name}`}>
          {Array.isArray(value) ? `${value.length} stroke${value.length === 1 ? '' : 's'}, painted below` : 'none yet: paint below'}
        </span>
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
    <div
      className={`sd-param kind-${param.kind}${invalid ? ' invalid' : ''}${inline ? ' inline' : ''}`}
      data-testid={`control-${param.name}`}
      title={tip}
      {...stopCanvas}
    >
      <label className="sd-param-label">
        {param.label || param.name}
        {param.description ? (
          <span className="sd-help" aria-label={param.description}>
            ?
          </span>
        ) : null}
        {exposable ? <ExposeToggle nodeId={nodeId} param={param.name} /> : null}
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

/** The "show in simple mode" toggle of a parameter: filled when the simple form shows it. */
function ExposeToggle({ nodeId, param }: { nodeId: string; param: string }) {
  const { bridge } = useNodeEnv();
  const on = bridge.exposedOf(nodeId).includes(param);
  return (
    <button
      type="button"
      className={`sd-expose${on ? ' on' : ''}`}
      data-testid={`expose-${param}`}
      aria-pressed={on}
      title={on ? 'Shown in simple mode: click to hide it there' : 'Show in simple mode'}
      onClick={(e) => {
        e.preventDefault();
        bridge.setExposed(nodeId, param, !on);
      }}
    >
      {on ? '●' : '○'}
    </button>
  );
}

/**
 * A number typed as text. A field left empty (or holding something that is not a number) does not
 * change the parameter: it says so, and gives the value back when the field is left.
 */
function NumberField({ param, value, onChange }: { param: CatalogParam; value: unknown; onChange: (v: number) => void }) {
  const [text, setText] = useState(value === undefined || value === null ? '' : String(value));
  // Follow outside changes (undo/redo, load) unless the text already means that number. Adjusted while
  // rendering (React's pattern for state that follows a prop), so a keystroke never re-syncs the text.
  const [shown, setShown] = useState(value);
  if (!Object.is(shown, value)) {
    setShown(value);
    if (value !== undefined && value !== null && Number(text) !== value) setText(String(value));
  }
  const step = param.step ?? (param.kind === 'integer' ? 1 : 'any');
  const parsed = text.trim() === '' ? NaN : Number(text);
  const unusable = !Number.isFinite(parsed);
  const commit = (s: string) => {
    setText(s);
    const n = s.trim() === '' ? NaN : Number(s);
    if (Number.isFinite(n)) onChange(n);
  };
  const slider = param.ui?.slider === true && param.min !== undefined && param.max !== undefined;
  const kept = value === undefined || value === null ? 'its default' : String(value);
  return (
    <>
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
          className={unusable ? 'unusable' : undefined}
          min={param.min}
          max={param.max}
          step={step}
          value={text}
          onChange={(e) => commit(e.target.value)}
          onBlur={() => {
            if (unusable && value !== undefined && value !== null) setText(String(value));
          }}
        />
      </div>
      {unusable ? (
        <div className="sd-param-issue" data-testid="param-unusable">
          {text.trim() === '' ? 'Empty' : 'Not a number'}: enter a number
          {param.min !== undefined && param.max !== undefined ? ` from ${param.min} to ${param.max}` : ''}. The node keeps {kept} until you do.
        </div>
      ) : null}
    </>
  );
}

function TextField({
  nodeId,
  param,
  value,
  onChange,
}: {
  nodeId: string;
  param: CatalogParam;
  value: unknown;
  onChange: (v: string, coalesce: boolean) => void;
}) {
  const presets = presetsOf(param.ui);
  const text = value === undefined ? '' : String(value);
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
      <textarea data-testid={`param-${param.name}`} rows={3} value={text} onChange={(e) => onChange(e.target.value, true)} />
      {text.trim() === '' && !param.optional ? (
        <div className="sd-param-hint" data-testid="param-empty">
          Empty: this prompt gives the model no words to follow.
        </div>
      ) : null}
      {param.ui?.tokens === true ? <TokenCountLine nodeId={nodeId} /> : null}
    </div>
  );
}

/** "82 / 75 — cut at 75" or "82 tokens, 2 chunks" under a prompt (counted by useTokenCounts). */
function TokenCountLine({ nodeId }: { nodeId: string }) {
  const counted = useObservable(useNodeEnv().tokenCounts)[nodeId];
  if (!counted) return null;
  const cut = counted.mode === 'truncate' && counted.count.tokens > counted.count.window;
  return (
    <div
      className={`sd-token-count${cut ? ' over' : ''}`}
      data-testid="token-count"
      title={cut ? 'The text encoder reads 75 tokens; the rest is cut. Encode Text → long prompt "chunks" reads it all.' : undefined}
    >
      {tokenCountLabel(counted.count, counted.mode)}
    </div>
  );
}

/** Image types the server takes. */
const IMAGE_TYPES = /^image\/(png|jpeg|webp)$/;
const IMAGE_NAMES = /\.(png|jpe?g|webp)$/i;

export function isUploadableImage(file: File): boolean {
  return IMAGE_TYPES.test(file.type) || (!file.type && IMAGE_NAMES.test(file.name));
}

/** An upload's message in the user's words (the API's own says how to call it, not what to do). */
function uploadProblem(file: File, err: unknown): string {
  const e = err as ApiError;
  if (e instanceof ApiError && (e.status === 415 || e.code === 'unsupported_image'))
    return `${file.name} is not a picture the studio can read: choose a PNG, JPEG or WebP file.`;
  if (e instanceof ApiError && e.status === 413) return `${file.name} is too large: ${e.message}`;
  return `Could not upload ${file.name}: ${(err as Error).message}`;
}

function ImageField({ nodeId, param, value, onClear }: { nodeId: string; param: CatalogParam; value: unknown; onClear: () => void }) {
  const { bridge, shared } = useNodeEnv();
  const uploaded = shared.uploads;
  const uploads = useObservable(uploaded);
  const input = useRef<HTMLInputElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [broken, setBroken] = useState(false);
  const name = typeof value === 'string' && value !== '' ? value : null;
  const builtin = name?.startsWith('builtin:') ?? false;
  const known = name ? uploads[name] : undefined;
  const src = name ? (known?.url ?? uploadUrl(name)) : null;
  useEffect(() => setBroken(false), [src]);
  // A picture in the field by any way (a good upload, undo, paste, a drop): the last upload's error is over.
  useEffect(() => setError(null), [name]);
  // After a reload the name is a content hash: ask the server what the file was called.
  useEffect(() => {
    if (!name || builtin || known || !src) return;
    let live = true;
    api.uploadInfo(name).then(
      (info) => live && rememberUpload(uploaded, name, { url: info.url, width: info.width, height: info.height, fileName: info.fileName ?? name }),
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [name, builtin, known, src, uploaded]);
  const pick = async (file: File | undefined) => {
    if (!file) return;
    setError(null);
    if (!isUploadableImage(file)) {
      setError(`${file.name} is not a picture: choose a PNG, JPEG or WebP file.`);
      return;
    }
    setBusy(true);
    try {
      await bridge.uploadImage(nodeId, param.name, file);
    } catch (err) {
      setError(uploadProblem(file, err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div
      className="sd-image"
      onDragOver={(e) => {
        if ([...e.dataTransfer.items].some((i) => i.kind === 'file')) e.preventDefault();
      }}
      onDrop={(e) => {
        const file = e.dataTransfer.files[0];
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
        onChange={(e) => {
          void pick(e.target.files?.[0]);
          e.target.value = '';
        }}
      />
      <div className="sd-image-row">
        <button type="button" disabled={busy} onClick={() => input.current?.click()}>
          {busy ? 'Uploading…' : name ? 'Replace…' : 'Upload image…'}
        </button>
        {name && !builtin ? (
          <button type="button" className="sd-link" onClick={onClear} title="Clear the image">
            ✕
          </button>
        ) : null}
      </div>
      {name ? (
        <div className="sd-image-name" data-testid="image-name" title={name}>
          {builtin ? 'Built-in sample picture (drop your own here)' : known ? `${known.fileName} · ${known.width}×${known.height}` : name}
        </div>
      ) : (
        <div className="sd-image-name muted">or drop an image here</div>
      )}
      <div className="sd-thumb-box">
        {src && !broken ? (
          <img className="sd-thumb" data-testid="image-thumb" src={withToken(src)} alt={name ?? ''} onError={() => setBroken(true)} draggable={false} />
        ) : null}
      </div>
      {error ? (
        <div className="sd-param-issue" data-testid="upload-error">
          {error}
        </div>
      ) : null}
    </div>
  );
}
