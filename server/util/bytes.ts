/** Byte counts for people: "2 MiB", "1.5 GiB", "512 KiB"; and the sizes people write on a command line. */

const KiB = 1024;
const MiB = KiB * 1024;
const GiB = MiB * 1024;

export function formatBytes(bytes: number): string {
  if (bytes >= GiB) return bytes % GiB === 0 ? `${bytes / GiB} GiB` : `${(bytes / GiB).toFixed(1)} GiB`;
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`;
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  if (bytes >= KiB) return `${Math.round(bytes / KiB)} KiB`;
  return `${bytes} bytes`;
}

/**
 * "8G", "8 GiB", "512M", "1.5g", "1073741824" → bytes (powers of 1024; a plain number is bytes).
 * Returns null for anything else.
 */
export function parseBytes(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) return null;
  const unit = { '': 1, k: KiB, m: MiB, g: GiB, t: GiB * 1024 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  const bytes = Math.round(Number(m[1]) * unit);
  return Number.isFinite(bytes) && bytes > 0 ? bytes : null;
}
