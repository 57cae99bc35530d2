/**
 * Node titles that name what a prompt holds ("Style 1: Van Gogh (left)") follow the prompt: picking
 * another preset, or typing another text, renames the part of the title that named the old one.
 * Pure and reversible (undo gives the old title back), so undo just applies it the other way round.
 */

export interface Preset {
  label: string;
  value: string;
}

const SNIPPET = 24;

/** The presets a text parameter offers (catalog `ui.presets`: strings or { label, value }). */
export function presetsOf(ui: Record<string, unknown> | undefined): Preset[] {
  const raw = ui?.presets;
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

/** How a title names a prompt: its preset's label, else its first words. */
export function promptTag(value: unknown, presets: readonly Preset[]): string {
  const text = typeof value === 'string' ? value.trim() : '';
  if (text === '') return 'empty prompt';
  const preset = presets.find((p) => p.value.trim() === text);
  if (preset) return preset.label;
  if (text.length <= SNIPPET) return text;
  const cut = text.slice(0, SNIPPET);
  const space = cut.lastIndexOf(' ');
  return `${(space > 8 ? cut.slice(0, space) : cut).trimEnd()}…`;
}

/** The title after the prompt changed from `before` to `after`; unchanged when it did not name the old prompt. */
export function retitle(title: string | undefined, before: unknown, after: unknown, presets: readonly Preset[]): string | undefined {
  if (!title || presets.length === 0) return title;
  // A prompt written after a preset (a template's short "A Van Gogh painting of …") is named by that preset's label.
  const named = (text: unknown) => (typeof text === 'string' ? presets.find((p) => text.includes(p.label))?.label : undefined);
  let from = promptTag(before, presets);
  if (!title.includes(from)) from = presets.find((p) => title.includes(p.label) && p.label === named(before))?.label ?? from;
  let to = promptTag(after, presets);
  if (!presets.some((p) => p.label === to)) to = named(after) ?? to;
  if (from === to || !title.includes(from)) return title;
  return title.replace(from, to);
}
