/**
 * A variadic family's control (a sampler's "+ style" / "− style"): sockets appear and disappear with
 * the count, one undo step each, the connections of a removed socket coming back on undo. And the
 * colour chip of style k, the colour the mask's painter and preview give that style.
 */
import { styleColor } from '../../../server/protocol/painting.ts';
import type { CatalogSocket } from '../../../server/protocol/catalog.ts';
import { variadicCount } from '../../../server/protocol/catalog.ts';
import { useNodeEnv } from './bridge.ts';
import { stopCanvas } from './ParamField.tsx';
import type { StudioNode } from './schemes.ts';

export function StyleChip({ index }: { index: number }) {
  return <span className="sd-style-chip" style={{ background: styleColor(index) }} />;
}

export function FamilyControl({ node, family }: { node: StudioNode; family: CatalogSocket }) {
  const { bridge } = useNodeEnv();
  const v = family.variadic!;
  const n = variadicCount(v, node.params);
  const word = family.label || family.name;
  const set = (count: number) => bridge.setParam(node.id, v.param, count, false);
  return (
    <div className="sd-family" data-testid={`family-${family.name}`} {...stopCanvas}>
      <button
        type="button"
        data-testid={`remove-${family.name}`}
        disabled={n <= v.min}
        title={`Remove ${word} ${n} (and its connection)`}
        onClick={() => set(n - 1)}
      >
        − {word}
      </button>
      <span className="sd-family-count" data-testid={`count-${family.name}`}>
        {n} {word}s
      </span>
      <button
        type="button"
        data-testid={`add-${family.name}`}
        disabled={n >= v.max}
        title={n >= v.max ? `At most ${v.max}` : `Add ${word} ${n + 1}`}
        onClick={() => set(n + 1)}
      >
        + {word}
      </button>
    </div>
  );
}
