/**
 * Content keys, ComfyUI style: a node's key hashes its type, its parsed parameters, its identity (model
 * fingerprint, uploaded file hash...) and the keys of the upstream outputs it reads. Since upstream keys
 * already cover their own ancestors, an edit changes exactly the keys downstream of it.
 */
import { createHash } from 'node:crypto';

export interface KeyParts {
  type: string;
  params: Record<string, unknown>;
  identity?: string;
  /** Input name → `<upstream key>:<output name>`. */
  inputs: Record<string, string>;
}

export function contentKey(parts: KeyParts): string {
  return createHash('sha256').update(canonicalJson(parts)).digest('hex');
}

/** JSON with object keys sorted at every depth, so key order in a file never changes a key. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(canonicalize(value));
}

function canonicalize(value: unknown): unknown {
  if (value === null || typeof value !== 'object') {
    // -0 and 0 serialize alike; non-finite numbers would collapse to null, keep them distinct.
    if (typeof value === 'number' && !Number.isFinite(value)) return { $number: String(value) };
    if (typeof value === 'bigint') return { $bigint: value.toString() };
    return value;
  }
  if (Array.isArray(value)) return value.map(canonicalize);
  if (ArrayBuffer.isView(value)) {
    return {
      $bytes: createHash('sha256')
        .update(new Uint8Array(value.buffer, value.byteOffset, value.byteLength))
        .digest('hex'),
    };
  }
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[k];
    if (v !== undefined) out[k] = canonicalize(v);
  }
  return out;
}
