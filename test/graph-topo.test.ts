import { describe, expect, it } from 'vitest';
import { ancestorsOf, topoOrder } from '../server/graph/topo.ts';
import { graphJson } from './support/test-nodes.ts';

describe('topoOrder / ancestorsOf', () => {
  it('orders every edge forward, ties broken by file order', () => {
    // File order: d, c, b, a; edges a → b and c → b. Ready at start: d, c, a (file order).
    const g = graphJson(
      [
        { id: 'd', type: 'Constant' },
        { id: 'c', type: 'Constant' },
        { id: 'b', type: 'Add' },
        { id: 'a', type: 'Constant' },
      ],
      [
        ['a', 'value', 'b', 'a'],
        ['c', 'value', 'b', 'b'],
      ],
    );
    const { order, cycle } = topoOrder(g);
    expect(cycle).toBeUndefined();
    expect(order).toEqual(['d', 'c', 'a', 'b']);
  });

  it('a node becomes ready as soon as its last input is placed, still in file order', () => {
    const g = graphJson(
      [
        { id: 'z', type: 'Add' },
        { id: 'y', type: 'Constant' },
        { id: 'x', type: 'Constant' },
      ],
      [['x', 'value', 'z', 'a']],
    );
    expect(topoOrder(g).order).toEqual(['y', 'x', 'z']);
  });

  it('finds a cycle and lists it in edge direction', () => {
    const g = graphJson(
      [
        { id: 'src', type: 'Constant' },
        { id: 'p', type: 'Add' },
        { id: 'q', type: 'Add' },
        { id: 'r', type: 'Add' },
        { id: 'after', type: 'Show' },
      ],
      [
        ['src', 'value', 'p', 'a'],
        ['p', 'sum', 'q', 'a'],
        ['q', 'sum', 'r', 'a'],
        ['r', 'sum', 'p', 'b'],
        ['r', 'sum', 'after', 'value'],
      ],
    );
    const { order, cycle } = topoOrder(g);
    expect(order).toEqual(['src']);
    expect(cycle).toHaveLength(3);
    // Rotate so it starts at p, then check direction p → q → r.
    const start = cycle!.indexOf('p');
    expect([...cycle!.slice(start), ...cycle!.slice(0, start)]).toEqual(['p', 'q', 'r']);
  });

  it('ancestorsOf gives the nodes and everything upstream of them', () => {
    const g = graphJson(
      [
        { id: 'a', type: 'Constant' },
        { id: 'b', type: 'Add' },
        { id: 'c', type: 'Show' },
        { id: 'd', type: 'Show' },
        { id: 'e', type: 'Constant' },
      ],
      [
        ['a', 'value', 'b', 'a'],
        ['b', 'sum', 'c', 'value'],
        ['a', 'value', 'd', 'value'],
      ],
    );
    expect([...ancestorsOf(g, ['c'])].sort()).toEqual(['a', 'b', 'c']);
    expect([...ancestorsOf(g, ['d', 'e'])].sort()).toEqual(['a', 'd', 'e']);
    expect([...ancestorsOf(g, ['missing'])]).toEqual([]);
  });
});
