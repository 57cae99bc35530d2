/** A run's graph opens titled after the run: the name it was queued under, not the seed the next run adds again. */
import { describe, expect, it } from 'vitest';
import { runGraphTitle } from '../client/src/app/hooks/useOpenRun.ts';
import { runTitle } from '../client/src/app/hooks/useRuns.ts';

const graph = { format: 'dualstyle-graph', version: 1, nodes: [], edges: [], meta: { title: 'Epsilon merge: Van Gogh left' } } as never;

describe('the title of a run’s graph', () => {
  it('is the name the run was queued under, without its seed or batch place, and names the run', () => {
    const id = '849c36aa-0000-4000-8000-000000000000';
    expect(runGraphTitle({ id, title: runTitle('epsilon-merge', { invert: 7 }, 0, 1) }, graph)).toBe('epsilon-merge (from run #849c36)');
    expect(runGraphTitle({ id, title: runTitle('my graph', { a: 1, b: 2 }, 1, 3) }, graph)).toBe('my graph (from run #849c36)');
  });

  it('does not pile up: a graph opened from a run and run again opens under one run’s name', () => {
    const again = runTitle('epsilon-merge (from run #849c36)', { invert: 7 }, 0, 1);
    expect(runGraphTitle({ id: 'abcdef12', title: again }, graph)).toBe('epsilon-merge (from run #abcdef)');
  });

  it('falls back on the graph’s title, then on “Untitled graph”', () => {
    expect(runGraphTitle({ id: 'abcdef12' }, graph)).toBe('Epsilon merge: Van Gogh left (from run #abcdef)');
    expect(runGraphTitle({ id: 'abcdef12' }, { ...(graph as object), meta: {} } as never)).toBe('Untitled graph (from run #abcdef)');
  });
});
