/**
 * The demo model's text side: a byte-level CLIP-format tokenizer (no merges, so every byte of a word is one
 * token) and a one-layer CLIP-like text encoder with `last_hidden_state` and `pooler_output`.
 */
import { GraphBuilder, type FloatType, type WeightRandom } from './onnx-builder.ts';
import { layerNorm, linear } from './layers.ts';

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

/**
 * input_ids [B, 77] → token + position embedding → one pre-norm MLP residual (quick GELU, as in CLIP)
 * → final LayerNorm = `last_hidden_state` [B, 77, 32]. `pooler_output` [B, 32] is the row at the first EOS,
 * found as CLIP does with ArgMax over the ids (EOS has the highest id). The ids are int32, or int64 as many
 * exports declare them (cast to int32 for the ArgMax, as transformers does).
 */
export function buildTextEncoder(random: WeightRandom, options: { dtype?: FloatType; inputIds?: 'int32' | 'int64' } = {}): Uint8Array {
  const b = new GraphBuilder('demo_text_encoder', random, undefined, { float: options.dtype });
  const idsType = options.inputIds ?? 'int32';
  const ids = b.input('input_ids', idsType, ['batch', TEXT_MAX_LENGTH]);
  const D = TEXT_HIDDEN;
  const emb = '/text_model/embeddings';
  const tokens = b.op('Gather', [b.weight('text_model.embeddings.token_embedding.weight', [DEMO_VOCAB_SIZE, D], 1), ids], `${emb}/token_embedding`, { axis: 0 });
  const positions = b.weight('text_model.embeddings.position_embedding.weight', [TEXT_MAX_LENGTH, D], 0.3);
  let h = b.op('Add', [tokens, positions], emb);

  const layer = '/text_model/encoder/layers.0';
  const fc1 = linear(b, layerNorm(b, h, `${layer}/layer_norm1`, D), `${layer}/mlp/fc1`, D, 4 * D);
  const quickGelu = b.op('Mul', [fc1, b.op('Sigmoid', [b.op('Mul', [fc1, b.constant(`${layer}/mlp/activation_fn`, b.float, [], [1.702])], `${layer}/mlp/activation_fn`)], `${layer}/mlp/activation_fn`)], `${layer}/mlp/activation_fn`);
  h = b.op('Add', [h, linear(b, quickGelu, `${layer}/mlp/fc2`, 4 * D, D)], layer);
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
  return b.model('Dual Style Studio demo text encoder: random weights, byte-level vocabulary of 514 tokens.').model;
}
