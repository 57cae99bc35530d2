/**
 * The demo model's text side: a byte-level CLIP-format tokenizer (no merges, so every byte of a word is one
 * token) and a one-layer CLIP-like text encoder with `last_hidden_state` and `pooler_output`.
 */
import { GraphBuilder, type BuilderOptions, type FloatType, type WeightRandom } from './onnx-builder.ts';
import { layerNorm, linear } from './layers.ts';
import { DEMO_PRESET, type TextArchitecture } from './presets.ts';

export const TEXT_MAX_LENGTH = 77;
export const TEXT_HIDDEN = 32;
export const BOS_TOKEN = '<|startoftext|>';
export const EOS_TOKEN = '<|endoftext|>';

/**
 * GPT-2 / CLIP `bytes_to_unicode`: printable bytes map to themselves, the others to code points from 256 up,
 * so every byte has a visible, whitespace-free symbol. Returned in CLIP's vocabulary order.
 */
export function bytesToUnicode(): Array<[byte: number, symbol: string]> {
  const printable: number[] = [];
  for (let c = '!'.charCodeAt(0); c <= '~'.charCodeAt(0); c++) printable.push(c);
  for (let c = 0xa1; c <= 0xac; c++) printable.push(c);
  for (let c = 0xae; c <= 0xff; c++) printable.push(c);
  const table: Array<[number, string]> = printable.map((c) => [c, String.fromCharCode(c)]);
  let extra = 0;
  for (let byte = 0; byte < 256; byte++) {
    if (!printable.includes(byte)) table.push([byte, String.fromCharCode(256 + extra++)]);
  }
  return table;
}

/** CLIP's vocabulary layout with no merges: 256 byte symbols, the same with `</w>`, then BOS (512) and EOS (513). */
export function demoVocab(): Record<string, number> {
  const symbols = bytesToUnicode().map(([, s]) => s);
  const entries = [...symbols, ...symbols.map((s) => `${s}</w>`), BOS_TOKEN, EOS_TOKEN];
  return Object.fromEntries(entries.map((token, id) => [token, id]));
}

export const DEMO_VOCAB_SIZE = 514;

export function tokenizerFiles(): Record<string, string> {
  return {
    'vocab.json': JSON.stringify(demoVocab()),
    // Only the header: with no merges, BPE leaves every word as its bytes (the last one with `</w>`).
    'merges.txt': '#version: 0.2\n',
    'tokenizer_config.json': `${JSON.stringify(
      {
        model_max_length: TEXT_MAX_LENGTH,
        pad_token: EOS_TOKEN,
        bos_token: BOS_TOKEN,
        eos_token: EOS_TOKEN,
        unk_token: EOS_TOKEN,
        do_lower_case: true,
        tokenizer_class: 'CLIPTokenizer',
      },
      null,
      1,
    )}\n`,
  };
}

/** CLIP's causal self-attention: q, k, v and out projections with bias, q scaled by 1/√d, a mask above the diagonal. */
function causalSelfAttention(b: GraphBuilder, x: string, scope: string, width: number, heads: number): string {
  const d = width / heads;
  const split = (y: string) =>
    b.op('Transpose', [b.op('Reshape', [y, b.constant(scope, 'int64', [4], [0, 0, heads, d])], scope)], scope, { perm: [0, 2, 1, 3] });
  const q = b.op('Mul', [linear(b, x, `${scope}/q_proj`, width, width), b.constant(scope, b.float, [], [1 / Math.sqrt(d)])], scope);
  const k = linear(b, x, `${scope}/k_proj`, width, width);
  const v = linear(b, x, `${scope}/v_proj`, width, width);
  const L = TEXT_MAX_LENGTH;
  const mask = Array.from({ length: L * L }, (_, i) => (i % L > Math.floor(i / L) ? -1e4 : 0));
  const scores = b.op(
    'Add',
    [b.op('MatMul', [split(q), b.op('Transpose', [split(k)], scope, { perm: [0, 1, 3, 2] })], scope), b.constant(scope, b.float, [1, 1, L, L], mask)],
    scope,
  );
  const probs = b.op('Softmax', [scores], scope, { axis: -1 });
  const mixed = b.op('Transpose', [b.op('MatMul', [probs, split(v)], scope)], scope, { perm: [0, 2, 1, 3] });
  const merged = b.op('Reshape', [mixed, b.constant(scope, 'int64', [3], [0, 0, width])], scope);
  return linear(b, merged, `${scope}/out_proj`, width, width);
}

export interface TextEncoderOptions {
  dtype?: FloatType;
  /** int32, or int64 as many exports declare them. */
  inputIds?: 'int32' | 'int64';
  /** Write weights.pb here as they are made (full-size presets; the demo's weights are inline). */
  weightsFile?: string;
  shapesOnly?: BuilderOptions['shapesOnly'];
  /** A checkpoint's weights instead of random ones (see BuilderOptions.source). */
  source?: BuilderOptions['source'];
}

/**
 * input_ids [B, 77] → token + position embedding → `layers` pre-norm residual layers → final LayerNorm =
 * `last_hidden_state` [B, 77, width]. A CLIP layer is causal self-attention then an MLP (quick GELU), each
 * after its LayerNorm; the demo's one layer is the MLP alone (after layer_norm1). `pooler_output` [B, width]
 * is the row at the first EOS, found as CLIP does with ArgMax over the ids (EOS has the highest id). The ids
 * are int32, or int64 as many exports declare them (cast to int32 for the ArgMax, as transformers does).
 */
export function textEncoderModel(
  random: WeightRandom,
  arch: TextArchitecture = DEMO_PRESET.text,
  opts: TextEncoderOptions = {},
): { model: Uint8Array; weights?: Uint8Array; parameters: number } {
  const external =
    arch === DEMO_PRESET.text ? undefined : { location: 'weights.pb', minBytes: 1024, align: 64, ...(opts.weightsFile ? { file: opts.weightsFile } : {}) };
  const b = new GraphBuilder('demo_text_encoder', random, external, { float: opts.dtype, shapesOnly: opts.shapesOnly, source: opts.source });
  const idsType = opts.inputIds ?? 'int32';
  const ids = b.input('input_ids', idsType, ['batch', TEXT_MAX_LENGTH]);
  const D = arch.width;
  const inner = arch.intermediate ?? 4 * D;
  const emb = '/text_model/embeddings';
  const tokens = b.op('Gather', [b.weight('text_model.embeddings.token_embedding.weight', [arch.vocab, D], 1), ids], `${emb}/token_embedding`, { axis: 0 });
  const positions = b.weight('text_model.embeddings.position_embedding.weight', [TEXT_MAX_LENGTH, D], 0.3);
  let h = b.op('Add', [tokens, positions], emb);

  for (let l = 0; l < arch.layers; l++) {
    const layer = `/text_model/encoder/layers.${l}`;
    if (arch.attention) h = b.op('Add', [h, causalSelfAttention(b, layerNorm(b, h, `${layer}/layer_norm1`, D), `${layer}/self_attn`, D, arch.heads)], layer);
    const fc1 = linear(b, layerNorm(b, h, `${layer}/${arch.attention ? 'layer_norm2' : 'layer_norm1'}`, D), `${layer}/mlp/fc1`, D, inner);
    const act = `${layer}/mlp/activation_fn`;
    const quickGelu = b.op('Mul', [fc1, b.op('Sigmoid', [b.op('Mul', [fc1, b.constant(act, b.float, [], [1.702])], act)], act)], act);
    h = b.op('Add', [h, linear(b, quickGelu, `${layer}/mlp/fc2`, inner, D)], layer);
  }
  const last = layerNorm(b, h, '/text_model/final_layer_norm', D);
  b.node('Identity', [last], '/text_model', {}, { outputs: ['last_hidden_state'] });

  // pooler_output = last_hidden_state[arange(B), argmax(input_ids)]
  const p = '/text_model';
  const ids32 = idsType === 'int32' ? ids : b.op('Cast', [ids], p, { to: 6 });
  const eosPos = b.op('ArgMax', [ids32], p, { axis: -1, keepdims: 0 });
  const batch = b.op('Gather', [b.op('Shape', [ids], p), b.constant(p, 'int64', [], [0])], p, { axis: 0 });
  const rows = b.op('Range', [b.constant(p, 'int64', [], [0]), batch, b.constant(p, 'int64', [], [1])], p);
  const flatIndex = b.op('Add', [b.op('Mul', [rows, b.constant(p, 'int64', [], [TEXT_MAX_LENGTH])], p), eosPos], p);
  const flat = b.op('Reshape', [last, b.constant(p, 'int64', [2], [-1, D])], p);
  b.node('Gather', [flat, flatIndex], p, { axis: 0 }, { outputs: ['pooler_output'] });

  b.output('last_hidden_state', b.float, ['batch', TEXT_MAX_LENGTH, D]);
  b.output('pooler_output', b.float, ['batch', D]);
  const doc =
    arch === DEMO_PRESET.text
      ? 'Dual Style Studio demo text encoder: random weights, byte-level vocabulary of 514 tokens.'
      : `Dual Style Studio generated text encoder: random weights, CLIP text model with ${arch.layers} layers of width ${D}.`;
  return { ...b.model(doc), parameters: b.parameters };
}

/** The demo's text encoder (one file, weights inline). */
export function buildTextEncoder(random: WeightRandom, options: Pick<TextEncoderOptions, 'dtype' | 'inputIds'> = {}): Uint8Array {
  return textEncoderModel(random, DEMO_PRESET.text, options).model;
}
