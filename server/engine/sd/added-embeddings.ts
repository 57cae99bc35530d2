/**
 * The textual-inversion embeddings a pipeline has been given: each name's vectors, the ids its
 * placeholder tokens get (after the model's own vocabulary, see token-embedding-rewrite.ts) and the
 * table fed to the rewritten text encoder. Ids are handed out once per content: a name whose file changed
 * gets fresh rows, so a cached encoding of the old content never reads the new one's ids.
 */
import { UserError } from '../errors.ts';
import type { AddedTokens } from '../text/added-tokens.ts';

/** One embedding file's vectors, as the caller read it. */
export interface TokenEmbedding {
  /** The name a prompt uses (`embedding:NAME`). */
  name: string;
  /** `count` vectors of the text encoder's width, one after the other. */
  vectors: Float32Array;
  count: number;
  /** Identifies the content (a hash of the file): the text cache keys on it. */
  key: string;
}

interface Entry {
  key: string;
  first: number;
  count: number;
}

export class AddedEmbeddings {
  private readonly entries = new Map<string, Entry>();
  private rows: Float32Array;
  private used = 0;

  constructor(readonly width: number) {
    this.rows = new Float32Array(width);
  }

  /** Registers embeddings (again: a changed one gets new rows); refuses vectors of another width. */
  add(embeddings: readonly TokenEmbedding[]): void {
    for (const e of embeddings) {
      if (e.count < 1 || e.vectors.length !== e.count * this.width) {
        throw new UserError(`embedding ${e.name}: ${e.vectors.length / Math.max(1, e.count)} values per vector, this text encoder takes ${this.width}`, 'text');
      }
      if (this.entries.get(e.name)?.key === e.key) continue;
      const needed = (this.used + e.count) * this.width;
      if (needed > this.rows.length) {
        const grown = new Float32Array(Math.max(needed, this.rows.length * 2));
        grown.set(this.rows.subarray(0, this.used * this.width));
        this.rows = grown;
      }
      this.rows.set(e.vectors, this.used * this.width);
      this.entries.set(e.name, { key: e.key, first: this.used, count: e.count });
      this.used += e.count;
    }
  }

  /** The token ids of `names` when the model's own vocabulary has `vocab` rows; a name not added is refused. */
  tokens(names: readonly string[], vocab: number): AddedTokens {
    const out = new Map<string, number[]>();
    for (const name of names) {
      const e = this.entries.get(name);
      if (!e) throw new UserError(`the prompt uses embedding:${name}, which was not loaded for this model`, 'text');
      out.set(
        name,
        Array.from({ length: e.count }, (_, i) => vocab + e.first + i),
      );
    }
    return out;
  }

  /** What the encodings of a prompt using `names` depend on, for the text cache. */
  cacheKey(names: readonly string[]): string {
    return names.map((n) => `${n}=${this.entries.get(n)?.key ?? '?'}`).join('\0');
  }

  /** The added table, [max(1, rows), width] (one zero row when nothing was added: the input cannot be empty). */
  table(): { data: Float32Array; dims: [number, number] } {
    const n = Math.max(1, this.used);
    return { data: this.rows.subarray(0, n * this.width), dims: [n, this.width] };
  }
}
