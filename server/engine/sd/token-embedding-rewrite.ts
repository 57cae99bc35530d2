/**
 * The text encoder with room for textual-inversion tokens. An ONNX CLIP text encoder looks its token ids up
 * with one Gather on the token-embedding initializer [vocab, width]; this rewrite gives that lookup a second
 * table, the graph input `added_token_embeddings` [n, width]: ids below `vocab` read the model's table as
 * before, id `vocab + k` reads row k of the added table. The embeddings are fed at run time, so the graph is
 * derived once per text encoder (ONNX exports and converted models alike) and any set of embedding files
 * works with it, with nothing copied; the model's own table is never touched.
 */
import onnxProto from 'onnx-proto';
import { attribute, intAttr, intsAttribute, type IModelProto, type INodeProto, type ITensorProto } from '../optimizer/graph.ts';

const { onnx } = onnxProto;

/** The graph input that holds the added tokens' vectors (at least one row: a zero row when there are none). */
export const ADDED_EMBEDDINGS_INPUT = 'added_token_embeddings';
/** Bumped when the rewrite changes: the derived graphs on disk are made again. */
export const TOKEN_EMBEDDING_REWRITE_VERSION = 1;

export class TokenEmbeddingRewriteError extends Error {}

/**
 * The Gather of token ids on the token-embedding table: by its name, else the rank-2 lookup with the most
 * rows. Takes a decoded model's nodes and initializers, or a graph outline's (read without the weights).
 */
export function findTokenLookup(nodes: readonly INodeProto[], initializers: ReadonlyMap<string, ITensorProto>): { gather: INodeProto; table: ITensorProto } {
  const lookups = nodes
    .filter((n) => n.opType === 'Gather' && (intAttr(n, 'axis') ?? 0) === 0 && initializers.get(n.input?.[0] ?? '')?.dims?.length === 2)
    .map((gather) => ({ gather, table: initializers.get(gather.input![0]!)! }));
  const named = lookups.find((l) => /token_embedding/.test(l.table.name ?? ''));
  const largest = [...lookups].sort((a, b) => Number(b.table.dims![0]) - Number(a.table.dims![0]))[0];
  const found = named ?? largest;
  if (!found) throw new TokenEmbeddingRewriteError('the text encoder has no token-embedding lookup (a Gather on a [vocab, width] initializer)');
  return found;
}

const int64Scalar = (name: string, value: number): ITensorProto => ({ name, dataType: onnx.TensorProto.DataType.INT64, dims: [], int64Data: [value] });

/** Rewrites `model` in place; returns the number of rows of the model's own table (the first added token's id). */
export function rewriteTokenEmbedding(model: IModelProto): { vocab: number; width: number } {
  const g = model.graph!;
  if ((g.input ?? []).some((i) => i.name === ADDED_EMBEDDINGS_INPUT)) throw new TokenEmbeddingRewriteError('the text encoder was rewritten already');
  const { gather, table } = findTokenLookup(g.node ?? [], new Map((g.initializer ?? []).map((t) => [t.name ?? '', t])));
  const [vocab, width] = table.dims!.map(Number) as [number, number];
  const opset = Number((model.opsetImport ?? []).find((o) => !o.domain)?.version ?? 0);
  if (opset < 11) throw new TokenEmbeddingRewriteError(`the text encoder's opset ${opset} is older than 11`);
  const p = '/added_tokens/';
  const name = (s: string) => p + s;
  g.initializer!.push(int64Scalar(name('vocab'), vocab), int64Scalar(name('zero'), 0));
  const op = (opType: string, inputs: string[], output: string, attrs: onnxProto.onnx.IAttributeProto[] = []): INodeProto => ({
    opType,
    name: name(output),
    input: inputs,
    output: [output.startsWith('/') ? output : name(output)],
    attribute: attrs,
  });
  const [ids, idsOut] = [name('ids'), gather.output![0]!];
  let unsqueeze: INodeProto;
  if (opset >= 13) {
    g.initializer!.push({ name: name('last_axis'), dataType: onnx.TensorProto.DataType.INT64, dims: [1], int64Data: [-1] });
    unsqueeze = op('Unsqueeze', [name('known'), name('last_axis')], 'known_rows');
  } else unsqueeze = op('Unsqueeze', [name('known')], 'known_rows', [intsAttribute('axes', [-1])]);
  const nodes = [
    op('Cast', [gather.input![1]!], 'ids', [attribute('to', onnx.TensorProto.DataType.INT64)]),
    op('Less', [ids, name('vocab')], 'known'),
    op('Where', [name('known'), ids, name('zero')], 'model_ids'),
    op('Sub', [ids, name('vocab')], 'shifted'),
    op('Where', [name('known'), name('zero'), name('shifted')], 'added_ids'),
    op('Gather', [table.name!, name('model_ids')], 'model_rows', [attribute('axis', 0)]),
    op('Gather', [ADDED_EMBEDDINGS_INPUT, name('added_ids')], 'added_rows', [attribute('axis', 0)]),
    unsqueeze,
    { ...op('Where', [name('known_rows'), name('model_rows'), name('added_rows')], 'out'), output: [idsOut] },
  ];
  const at = g.node!.indexOf(gather);
  g.node!.splice(at, 1, ...nodes);
  g.input!.push({
    name: ADDED_EMBEDDINGS_INPUT,
    type: { tensorType: { elemType: table.dataType ?? onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: 'added_tokens' }, { dimValue: width }] } } },
  });
  return { vocab, width };
}
