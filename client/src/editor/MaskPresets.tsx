/**
 * A Mask node's presets: apply one of the masks saved under a name (its shape, strokes, words and
 * every other setting) to this node, or save this node's settings as one, to reuse in any graph.
 * Applying sets each setting that differs as an ordinary edit (undo takes them back one by one).
 */
import { useEffect, useState } from 'react';
import { api, type MaskPresetEntry } from '../api.ts';
import { useNodeEnv } from './bridge.ts';
import { stopCanvas } from './ParamField.tsx';
import type { StudioNode } from './schemes.ts';

export function MaskPresets({ node }: { node: StudioNode }) {
  const { bridge } = useNodeEnv();
  const [presets, setPresets] = useState<MaskPresetEntry[]>([]);
  const [name, setName] = useState('');
  const [note, setNote] = useState<string | null>(null);
  const refresh = () =>
    api.maskPresets().then(setPresets, (e: Error) => {
      setNote(e.message);
    });
  useEffect(() => {
    void refresh();
  }, []);

  const apply = async (preset: string) => {
    if (!preset) return;
    try {
      const { params } = await api.maskPreset(preset);
      for (const [key, value] of Object.entries(params)) {
        if (JSON.stringify(node.params[key]) !== JSON.stringify(value)) bridge.setParam(node.id, key, value, false);
      }
      setNote(`applied “${preset}”`);
    } catch (e) {
      setNote((e as Error).message);
    }
  };
  const save = async () => {
    const chosen = name.trim();
    try {
      await api.saveMaskPreset(chosen, node.params);
      setNote(`saved “${chosen}”`);
      setName('');
      await refresh();
    } catch (e) {
      setNote((e as Error).message);
    }
  };

  return (
    <div className="sd-mask-presets" data-testid="mask-presets" {...stopCanvas}>
      <select data-testid="mask-preset-apply" value="" onFocus={() => void refresh()} onChange={(e) => void apply(e.target.value)}>
        <option value="">{presets.length ? 'Apply a preset…' : 'No presets yet'}</option>
        {presets.map((p) => (
          <option key={p.name} value={p.name}>
            {p.name} ({p.shape}, {p.styles} styles)
          </option>
        ))}
      </select>
      <input data-testid="mask-preset-name" placeholder="preset name" value={name} onChange={(e) => setName(e.target.value)} />
      <button type="button" data-testid="mask-preset-save" disabled={!name.trim()} onClick={() => void save()}>
        Save
      </button>
      {note ? (
        <div className="sd-mask-presets-note" data-testid="mask-preset-note">
          {note}
        </div>
      ) : null}
    </div>
  );
}
