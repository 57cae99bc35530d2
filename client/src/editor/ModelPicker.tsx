/**
 * A model field: what the models folders hold (GET /api/models), grouped by kind, for the one field it
 * fills (Load Model's model: ONNX exports, diffusers folders and checkpoints; Load LoRA: LoRA files;
 * a vae field: VAE files; the parameter's `ui.picks` says which). Typing a path by hand still works; a
 * value the list does not hold is said on the node before any run, not only when the run fails.
 */
import { useState } from 'react';
import type { CatalogParam } from '../../../server/protocol/catalog.ts';
import { api, type ModelEntry } from '../api.ts';
import { useObservable } from '../runtime.ts';
import { useNodeEnv } from './bridge.ts';

type Kind = NonNullable<ModelEntry['kind']>;

const GROUPS: { kind: Kind; title: string }[] = [
  { kind: 'demo', title: 'Built in' },
  { kind: 'onnx', title: 'ONNX exports' },
  { kind: 'diffusers', title: 'Diffusers folders (converted on first use)' },
  { kind: 'checkpoint', title: 'Checkpoints (converted on first use)' },
  { kind: 'lora', title: 'LoRA files' },
  { kind: 'vae', title: 'VAE files' },
];

/** The kinds a field takes: its `ui.picks` ('lora', 'vae'), else the models Load Model loads. */
export function picksOf(param: CatalogParam): Kind[] {
  const picks = param.ui?.picks;
  if (picks === 'lora' || picks === 'vae') return [picks];
  return ['demo', 'onnx', 'diffusers', 'checkpoint'];
}

/** The entries a field offers; an entry of a server that gives no kind is a model. */
export function entriesFor(models: ModelEntry[], picks: Kind[]): ModelEntry[] {
  return models.filter((m) => picks.includes(m.kind ?? (m.demo ? 'demo' : 'onnx')));
}

export function ModelPicker(props: { param: CatalogParam; value: unknown; onChange(value: string, coalesce: boolean): void }) {
  const { param } = props;
  const modelsState = useNodeEnv().shared.models;
  const models = useObservable(modelsState);
  const [open, setOpen] = useState(false);
  const picks = picksOf(param);
  const offered = entriesFor(models, picks);
  const value = String(props.value ?? '');
  // Known once the list has come (it always holds the demo); an empty optional field is fine.
  const unknown = models.length > 0 && value.trim() !== '' && !offered.some((m) => m.model === value.trim());
  const what = picks.includes('lora') ? 'LoRA file' : picks.includes('vae') ? 'VAE file' : 'model';
  return (
    <div className="sd-model-picker" data-testid={`model-picker-${param.name}`}>
      <div className="sd-model-row">
        <input
          type="text"
          data-testid={`param-${param.name}`}
          placeholder={picks.includes('demo') ? 'demo, or a model folder path' : `a ${what} in the models folders`}
          value={value}
          onChange={(e) => props.onChange(e.target.value, true)}
        />
        <button
          type="button"
          className="sd-model-open"
          data-testid={`model-list-${param.name}`}
          aria-expanded={open}
          title={`Pick a ${what} from the models folders`}
          onClick={() => {
            // Read again on open: a model copied into the folders since the page opened shows.
            if (!open)
              void api.models().then(
                (m) => modelsState.set(m),
                () => undefined,
              );
            setOpen(!open);
          }}
        >
          ▾
        </button>
      </div>
      {open ? (
        <ModelList
          entries={offered}
          value={value}
          what={what}
          onPick={(m) => {
            setOpen(false);
            props.onChange(m, false);
          }}
        />
      ) : null}
      {unknown ? (
        <div className="sd-param-warning" data-testid="model-unknown">
          Not in the models folders: a run fails unless “{value}” is a {what} path the server can read.
        </div>
      ) : null}
    </div>
  );
}

function ModelList(props: { entries: ModelEntry[]; value: string; what: string; onPick(model: string): void }) {
  const groups = GROUPS.map((g) => ({ ...g, entries: props.entries.filter((m) => (m.kind ?? (m.demo ? 'demo' : 'onnx')) === g.kind) })).filter(
    (g) => g.entries.length,
  );
  return (
    <div className="sd-model-list" role="listbox" data-testid="model-list">
      {groups.length === 0 ? <p className="muted">No {props.what} in the models folders yet.</p> : null}
      {groups.map((g) => (
        <section key={g.kind}>
          <h5>{g.title}</h5>
          {g.entries.map((m) => (
            <button
              key={m.model}
              type="button"
              role="option"
              aria-selected={m.model === props.value}
              className={m.model === props.value ? 'active' : ''}
              data-testid="model-option"
              data-model={m.model}
              data-kind={m.kind}
              title={m.note ?? m.model}
              onClick={() => props.onPick(m.model)}
            >
              <span>{m.label}</span>
              {m.model !== m.label ? <span className="muted">{m.model}</span> : null}
            </button>
          ))}
        </section>
      ))}
    </div>
  );
}
