/**
 * A Stable Diffusion 1.x pipeline from a diffusers ONNX folder: text encoder, UNet, VAE encoder and
 * decoder sessions (created once, reused), the CLIP tokenizer and the scheduler config.
 * Input names, dtypes and shapes are read from the sessions, never assumed: ids int32 or int64,
 * timestep float32/float16/int64 and batched or scalar, weights fp32 or fp16, VAE encoder with
 * 4 channels (mean) or 8 (mean + logvar). Everything outside this class is float32.
 */
import path from 'node:path';
import { prepareAttentionMergeUnet } from '../attention/unet-cache.ts';
import { prepareAttentionMapsUnet } from '../attention/attention-maps-unet.ts';
import type { Denoiser } from '../diffusion/denoiser.ts';
import type { ImageValue } from '../values.ts';
import { UserError } from '../errors.ts';
import { readUnetOutline } from './latent-size.ts';
import { checkModelFolder, fingerprintFolder, ModelFolderError, readModelConfig } from './model-folder.ts';
import { describeModel, type ModelSessions, type PipelineInfo } from './pipeline-info.ts';
import { createSession, cudaProviderStatus, type SessionSettings } from '../runtime/sessions.ts';
import {
  describeFusions,
  float16Wanted,
  fusionsFor,
  optimizerEnabled,
  prepareFloat16Unet,
  prepareOptimizedUnet,
  type OptimizedUnet,
  type OptimizerProvider,
} from '../optimizer/optimize.ts';
import {
  findInput,
  floatTensor,
  inputInfos,
  numberTensor,
  numericDim,
  outputInfos,
  tensorToFloat32,
  type ExecutionProvider,
  type ExecutionProviderRequest,
  type InferenceSession,
  type OrtTensor,
} from '../runtime/runtime.ts';
import { ClipTokenizer } from '../text/tokenizer.ts';
import type { LongPromptMode } from '../../protocol/prompt-tokens.ts';
import { embeddingNames, type AddedTokens } from '../text/added-tokens.ts';
import { AddedEmbeddings, type TokenEmbedding } from './added-embeddings.ts';
import { openTextEncoderWithEmbeddings } from './text-encoder-embeddings.ts';
import { ADDED_EMBEDDINGS_INPUT } from './token-embedding-rewrite.ts';
import { UnetBuffers } from './unet-buffers.ts';
import { diagnoseTensorrt } from '../cuda/tensorrt-doctor.ts';
import { bindUnet, checkFixedBatch, timestepDims, type UnetBinding, type UnetCallExtras } from './unet-binding.ts';
import { UnetSlot, type SlotSession } from './unet-slot.ts';

export { ModelFolderError } from './model-folder.ts';
export type { PipelineInfo } from './pipeline-info.ts';
export type { UnetBinding, UnetCallExtras } from './unet-binding.ts';

/** Counters of the model calls (for the bench and the logs). */
export interface PipelineStats {
  unetCalls: number;
  unetMs: number;
  /** Rows pushed through the UNet in total (calls × batch). */
  unetRows: number;
  textCalls: number;
  textMs: number;
  vaeCalls: number;
  vaeMs: number;
}

export interface LoadOptions {
  executionProvider?: ExecutionProviderRequest;
  /** Where attention-merge UNets of read-only model folders are cached (see attention-unet.ts). */
  attentionCacheDir?: string;
  /** Device id (`--gpu N`) and the optimized-graph cache, for every session of this pipeline. */
  session?: SessionSettings;
  /** Run the load-time graph optimizer on the UNet (optimizer/optimize.ts); default: unless DUALSTYLE_OPTIMIZE=off. */
  optimize?: boolean;
  /** Convert an fp32 UNet to fp16 at load (optimizer/float16.ts); default: on CUDA (DUALSTYLE_FP16=on|off overrides). */
  fp16?: boolean;
}

/** The provider a request will get, for the optimizer to fuse for (auto: CUDA when it can start). */
function expectedProvider(request: ExecutionProviderRequest, deviceId = 0): OptimizerProvider {
  if (request === 'auto') return cudaProviderStatus(deviceId).available ? 'cuda' : 'cpu';
  // --ep tensorrt falls back to CUDA (or CPU) where TensorRT cannot run (sessions.ts): fuse for that.
  if (request === 'tensorrt' && !diagnoseTensorrt().ready && process.env.DUALSTYLE_CUDA_CHECK !== 'off') return expectedProvider('auto', deviceId);
  return request;
}

/** The UNet graph a load opens: the optimizer's (fusions for the provider) and/or its fp16 conversion. */
interface DerivedUnet {
  path: string;
  variant: string;
  fusions: OptimizedUnet['fusions'] | null;
  fp16: boolean;
}

/**
 * The UNet graph to open for `provider`, or null for unet/model.onnx as exported. A derivation that fails
 * is skipped with a warning: the graph as exported still works (a fusion or fp16 is a speed-up, never a
 * reason not to load).
 */
async function deriveUnet(dir: string, provider: OptimizerProvider, options: LoadOptions): Promise<DerivedUnet | null> {
  let derived: DerivedUnet | null = null;
  if (optimizerEnabled(options.optimize) && fusionsFor(provider).length > 0) {
    try {
      const o = await prepareOptimizedUnet(dir, provider, options.attentionCacheDir);
      derived = { path: o.path, variant: o.variant, fusions: o.fusions, fp16: false };
    } catch (e) {
      console.warn(`graph optimizer skipped for ${dir}: ${(e as Error).message}`);
    }
  }
  if (float16Wanted(provider, options.fp16)) {
    try {
      const source = derived?.path ?? path.join(dir, 'unet/model.onnx');
      const half = await prepareFloat16Unet(source, derived?.variant ?? '', options.attentionCacheDir);
      if (half) derived = { path: half.path, variant: half.variant, fusions: derived?.fusions ?? null, fp16: true };
    } catch (e) {
      console.warn(`fp16 conversion skipped for ${dir}: ${(e as Error).message}`);
    }
  }
  return derived;
}

export interface TextEncoding {
  /**
   * last_hidden_state [textLength, textDim], or in chunks mode the k chunks' states one after the other,
   * [k·textLength, textDim]; shared by the cache, treat as read-only.
   */
  embedding: Float32Array;
  /** Content tokens of the prompt before truncation. */
  tokens: number;
  truncated: boolean;
  /** Chunks of textLength tokens in `embedding` (1 when truncated to one window). */
  chunks: number;
}

export class SdPipeline implements Denoiser<UnetCallExtras> {
  readonly info: PipelineInfo;
  readonly tokenizer: ClipTokenizer;
  readonly stats: PipelineStats = { unetCalls: 0, unetMs: 0, unetRows: 0, textCalls: 0, textMs: 0, vaeCalls: 0, vaeMs: 0 };

  private textEncoder: InferenceSession;
  /** The one UNet session: stock, or rewritten for the most conditionings asked so far (unet-slot.ts). */
  private readonly unetSlot: UnetSlot;
  private vaeEncoder: InferenceSession;
  private vaeDecoder: InferenceSession;
  private readonly textCache = new Map<string, Promise<TextEncoding>>();
  /** Reused fp16 feeds and float32 outputs of the UNet calls (fp16 UNets; unet-buffers.ts). */
  private readonly buffers = new UnetBuffers();
  private released = false;
  /** The UNet with attention-map outputs (the words mask), derived and opened on first use. */
  private attentionMaps: Promise<{ binding: UnetBinding; outputs: string[] }> | undefined;
  private attentionCacheDir: string | undefined;
  /** The graph the UNet session runs and attention merges are rewritten from, when not unet/model.onnx (the optimizer's). */
  private unetSource: { path: string; variant: string } | undefined;
  private sessionSettings: SessionSettings = {};
  /** Textual-inversion embeddings given to this pipeline (Encode Text's `embedding:NAME`). */
  private embeddings: AddedEmbeddings | undefined;
  /** The text encoder rewritten to take them, opened on the first prompt that uses one: its vocabulary size. */
  private textVocab: Promise<number> | undefined;
  /** Text-encoder runs in flight: the session they use is released only after them. */
  private readonly textRuns = new Set<Promise<unknown>>();

  private constructor(info: PipelineInfo, tokenizer: ClipTokenizer, sessions: ModelSessions) {
    this.info = info;
    this.tokenizer = tokenizer;
    this.textEncoder = sessions.text;
    this.unetSlot = new UnetSlot({ binding: sessions.unet, styles: 1, rel: 'unet/model.onnx' }, info, this.buffers);
    this.vaeEncoder = sessions.vaeEncoder;
    this.vaeDecoder = sessions.vaeDecoder;
  }

  /** Loads a diffusers ONNX folder; the execution provider is chosen once, for every session. */
  static async load(dirIn: string, options: LoadOptions = {}): Promise<SdPipeline> {
    const dir = path.resolve(dirIn);
    await checkModelFolder(dir);
    const request = options.executionProvider ?? 'auto';
    const config = await readModelConfig(dir);

    let tokenizer: ClipTokenizer;
    try {
      tokenizer = await ClipTokenizer.fromFolder(path.join(dir, 'tokenizer'));
    } catch (e) {
      throw new ModelFolderError(`cannot load the tokenizer of ${dir}: ${(e as Error).message}`);
    }
    const id = await fingerprintFolder(dir);

    const opened: InferenceSession[] = [];
    const sessionTimes: PipelineInfo['sessions'] = {};
    const open = async (rel: string, ep: ExecutionProviderRequest | ExecutionProvider, file = path.join(dir, rel)) => {
      try {
        const r = await createSession(file, ep, options.session);
        opened.push(r.session);
        sessionTimes[rel] = { ms: r.createMs, cache: r.cache };
        return r;
      } catch (e) {
        const msg = (e as Error).message;
        // Provider errors already say what to do; a broken model file needs its name.
        if (/execution provider/i.test(msg) || e instanceof UserError) throw e;
        throw new ModelFolderError(`cannot load ${rel} in ${dir}: ${msg.split('\n')[0]}`);
      }
    };
    // The UNet's structure (which latent sizes it takes) is read while onnxruntime opens the sessions.
    const unetOutline = readUnetOutline(path.join(dir, 'unet/model.onnx'));
    try {
      // The first session settles the provider (auto → CUDA or CPU); the rest reuse that choice. The UNet
      // is opened as the graph optimizer made it for the provider expected (optimizer/optimize.ts).
      const expected = expectedProvider(request, options.session?.deviceId);
      const derive = (provider: OptimizerProvider) => deriveUnet(dir, provider, options);
      let optimized = await derive(expected);
      let first = await open('unet/model.onnx', request, optimized?.path).catch(async (e: unknown) => {
        if (!optimized || e instanceof UserError) throw e;
        // The provider lacks a kernel in the types of this export (an fp16 MultiHeadAttention on CPU): as exported.
        console.warn(`optimized UNet of ${dir} failed to open (${(e as Error).message.split('\n')[0]}); using the graph as exported`);
        optimized = null;
        return open('unet/model.onnx', request);
      });
      if (optimized && expected !== first.provider) {
        // auto expected CUDA and got CPU (CUDA failed to start): the CPU's fusions instead.
        await first.session.release();
        opened.splice(opened.indexOf(first.session), 1);
        optimized = await derive(first.provider);
        first = await open('unet/model.onnx', first.provider, optimized?.path);
      }
      const [text, vaeEncoder, vaeDecoder] = await Promise.all([
        open('text_encoder/model.onnx', first.provider),
        open('vae_encoder/model.onnx', first.provider),
        open('vae_decoder/model.onnx', first.provider),
      ]);
      const unet = bindUnet(first.session);
      const sessions = { text: text.session, unet, vaeEncoder: vaeEncoder.session, vaeDecoder: vaeDecoder.session };
      const info = describeModel(dir, id, first, sessions, tokenizer.maxLength, config, await unetOutline, sessionTimes);
      info.graphOptimizer = describeFusions(first.provider, optimized?.fusions ?? null) + (optimized?.fp16 ? '; converted to fp16 at load' : '');
      const pipe = new SdPipeline(info, tokenizer, sessions);
      pipe.unetSource = optimized ? { path: optimized.path, variant: optimized.variant } : undefined;
      pipe.attentionCacheDir = options.attentionCacheDir;
      pipe.sessionSettings = options.session ?? {};
      if (info.textDim === 0) {
        // Width not declared anywhere: learn it from one (cached) encoding of the empty prompt.
        const { embedding } = await pipe.encodeText('');
        info.textDim = embedding.length / info.textLength;
      }
      return pipe;
    } catch (e) {
      await Promise.all(opened.map((s) => s.release().catch(() => undefined)));
      throw e;
    }
  }

  private alive(): void {
    if (this.released) throw new Error('this model was released; load it again');
  }

  /**
   * The UNet session made to take at least N conditionings (inputs encoder_hidden_states_2..N and mask):
   * rewritten from unet/model.onnx on first use (see attention/rewrite.ts), and opened in place of the
   * session before it (unet-slot.ts: one copy of the weights). A failure is not cached: the next call
   * tries again, and the session before it stays.
   */
  async attentionMergeUnet(styles = 2): Promise<UnetBinding> {
    this.alive();
    const source = this.unetSource;
    const prepare = (n: number) => prepareAttentionMergeUnet(this.info.dir, { cacheDir: this.attentionCacheDir, styles: n, ...(source ? { source } : {}) });
    const open = async (n: number): Promise<SlotSession> => {
      const file = n === 1 ? (source?.path ?? path.join(this.info.dir, 'unet/model.onnx')) : (await prepare(n)).path;
      this.alive();
      const rel = path.relative(this.info.dir, file) || file;
      const created = await createSession(file, this.info.executionProvider, this.sessionSettings);
      this.info.sessions[rel] = { ms: created.createMs, cache: created.cache };
      const slot = { binding: bindUnet(created.session, rel), styles: n, rel };
      try {
        this.unetSlot.extraFeeds(slot, 1, 8, 8); // every input of N conditionings is there
      } catch (e) {
        await created.session.release().catch(() => undefined);
        throw e;
      }
      return slot;
    };
    const s = await this.unetSlot.grow(styles, () => prepare(styles), open);
    if (this.released) await this.unetSlot.session.binding.session.release().catch(() => undefined);
    this.alive();
    return s.binding;
  }

  /** The conditionings the UNet session takes now: 1 for the stock graph, N after an attention merge of N. */
  get unetConditionings(): number {
    return this.unetSlot.session.styles;
  }

  /** UNet sessions opened over this pipeline's life (never two at once: the slot closes one first). */
  get unetSessionsOpened(): number {
    return this.unetSlot.opened;
  }

  /**
   * The UNet with one more output per cross-attention layer, its attention probabilities averaged over
   * the heads (attention/attention-maps.ts), derived from unet/model.onnx on first use and opened once
   * on this pipeline's execution provider. A failure is not cached: the next call tries again.
   */
  attentionMapsUnet(): Promise<{ binding: UnetBinding; outputs: string[] }> {
    this.alive();
    if (!this.attentionMaps) {
      const job = (async () => {
        const prepared = await prepareAttentionMapsUnet(this.info.dir, this.attentionCacheDir && path.join(this.attentionCacheDir, 'maps'));
        this.alive();
        const rel = path.relative(this.info.dir, prepared.path) || prepared.path;
        const created = await createSession(prepared.path, this.info.executionProvider, this.sessionSettings);
        this.info.sessions[rel] = { ms: created.createMs, cache: created.cache };
        if (this.released) {
          await created.session.release().catch(() => undefined);
          this.alive();
        }
        return { binding: bindUnet(created.session, rel), outputs: prepared.outputs };
      })();
      this.attentionMaps = job;
      job.catch(() => {
        if (this.attentionMaps === job) this.attentionMaps = undefined;
      });
    }
    return this.attentionMaps;
  }

  /** The embedding of the empty prompt ∅ (classifier-free guidance), cached like any prompt. */
  async unconditional(): Promise<Float32Array> {
    return (await this.encodeText('')).embedding;
  }

  /**
   * The extras of an attention merge of N styles: the conditionings of styles 2..N (each one row per row
   * of encoder_hidden_states) and the weights of styles 1..N−1, [1, N − 1, h, w] at latent size, shared
   * by every row. The UNet session is made to take N conditionings now; the feeds are formed per call
   * for whichever session the slot holds then (unet-slot.ts).
   */
  async attentionMergeExtras(conditionings: readonly Float32Array[], rows: number, weights: Float32Array, w: number, h: number): Promise<UnetCallExtras> {
    const styles = conditionings.length + 1;
    if (weights.length !== (styles - 1) * w * h) {
      throw new Error(`attention merge of ${styles} styles needs ${styles - 1} weight planes of ${w}×${h}, got ${weights.length} values`);
    }
    // A row may hold k chunks of a long prompt (k·L tokens); the rows of every style have been padded to one k.
    const n = rows * this.info.textLength * this.info.textDim;
    conditionings.forEach((c, i) => {
      if (c.length === 0 || c.length % n !== 0)
        throw new Error(
          `conditioning ${i + 2} has ${c.length} values; ${rows} rows of [k·${this.info.textLength}, ${this.info.textDim}] are a multiple of ${n}`,
        );
    });
    await this.attentionMergeUnet(styles);
    return { merge: { conditionings, weights, w, h } };
  }

  /**
   * One call's extras for a batch of pictures (diffusion/batch.ts): each style's conditioning rows picture
   * after picture; the weights are every picture's (one mask, broadcast over the rows).
   */
  joinExtras(parts: readonly UnetCallExtras[]): UnetCallExtras {
    const merges = parts.map((p) => p.merge);
    const first = merges[0];
    if (!first) {
      if (merges.some((m) => m)) throw new Error('the pictures of a batch must all be attention merges, or none');
      return {};
    }
    for (const m of merges) {
      if (!m || m.conditionings.length !== first.conditionings.length || m.w !== first.w || m.h !== first.h)
        throw new Error('the pictures of a batch must merge the same number of styles at the same size');
      if (m.weights.some((v, i) => v !== first.weights[i])) throw new Error('the pictures of a batch must share one attention-merge mask');
    }
    const conditionings = first.conditionings.map((_, i) => {
      const rows = merges.map((m) => m!.conditionings[i]!);
      const joined = new Float32Array(rows.reduce((s, r) => s + r.length, 0));
      let at = 0;
      for (const r of rows) {
        joined.set(r, at);
        at += r.length;
      }
      return joined;
    });
    return { merge: { conditionings, weights: first.weights, w: first.w, h: first.h } };
  }

  /** Makes textual-inversion embeddings usable as `embedding:NAME` in this pipeline's prompts (added-embeddings.ts). */
  addEmbeddings(list: readonly TokenEmbedding[]): void {
    this.alive();
    (this.embeddings ??= new AddedEmbeddings(this.info.textDim)).add(list);
  }

  /** The words of a prompt with their token positions (attention maps), an embedding reference as one word. */
  promptWords(prompt: string, mode: LongPromptMode = 'truncate'): { word: string; positions: number[] }[] {
    const names = embeddingNames(prompt);
    // Only the number of tokens matters here, not their ids.
    return this.tokenizer.words(prompt, mode, names.length ? this.addedEmbeddings(names).tokens(names, 0) : undefined);
  }

  /**
   * Tokenizes and encodes a prompt; cached per prompt text, mode (and the content of the embeddings it
   * uses). A long prompt is cut at the window (truncate), or read in chunks that are encoded as rows of
   * one call and concatenated (engine/text/chunks.ts); a prompt that fits gives the same embedding either way.
   */
  async encodeText(prompt: string, mode: LongPromptMode = 'truncate'): Promise<TextEncoding> {
    this.alive();
    const names = embeddingNames(prompt);
    const key = `${mode}:${prompt}${names.length ? `\0${this.addedEmbeddings(names).cacheKey(names)}` : ''}`;
    let hit = this.textCache.get(key);
    if (!hit) {
      hit = (async () => {
        const added = names.length ? await this.addedTokens(names) : undefined;
        if (mode === 'chunks') {
          const t = this.tokenizer.encodeChunks(prompt, added);
          return { embedding: await this.encodeIds(t.ids), tokens: t.tokens, truncated: false, chunks: t.chunks };
        }
        const t = this.tokenizer.encode(prompt, added);
        const embedding = await this.encodeIds(t.ids);
        return { embedding, tokens: t.tokens, truncated: t.truncated, chunks: 1 };
      })();
      this.textCache.set(key, hit);
      hit.catch(() => this.textCache.delete(key));
    }
    return hit;
  }

  /** The embeddings given, refusing a prompt that names one that was not. */
  private addedEmbeddings(names: readonly string[]): AddedEmbeddings {
    if (!this.embeddings) throw new UserError(`the prompt uses embedding:${names[0]}, which was not loaded for this model`, 'text');
    this.embeddings.tokens(names, 0);
    return this.embeddings;
  }

  /** The ids of the embeddings `names`, after the text encoder that reads them is in place (once; a failure is not kept). */
  private async addedTokens(names: readonly string[]): Promise<AddedTokens> {
    const embeddings = this.addedEmbeddings(names);
    if (!this.textVocab) {
      this.textVocab = openTextEncoderWithEmbeddings(this.info.dir, this.attentionCacheDir, this.info.executionProvider, this.sessionSettings).then(
        async ({ session, vocab }) => {
          if (this.released) {
            await session.release().catch(() => undefined);
            this.alive();
          }
          const before = this.textEncoder;
          this.textEncoder = session;
          await Promise.allSettled([...this.textRuns]);
          await before.release();
          return vocab;
        },
      );
      this.textVocab.catch(() => (this.textVocab = undefined));
    }
    return embeddings.tokens(names, await this.textVocab);
  }

  /** Text-encoder last_hidden_state for token ids (one prompt, or several concatenated rows). */
  async encodeIds(ids: Int32Array): Promise<Float32Array> {
    this.alive();
    const L = this.info.textLength;
    if (ids.length === 0 || ids.length % L !== 0) throw new Error(`token ids must come in rows of ${L}, got ${ids.length}`);
    const session = this.textEncoder;
    const inputs = inputInfos(session);
    const idInfo = findInput(inputs, ['input_ids'], 0, 'input_ids', 'text_encoder/model.onnx');
    const dims = [ids.length / L, L];
    const feeds: Record<string, OrtTensor> = { [idInfo.name]: numberTensor(idInfo.type, ids, dims) };
    for (const extra of inputs) {
      if (extra.name === idInfo.name) continue;
      if (extra.name === 'attention_mask') feeds[extra.name] = numberTensor(extra.type, new Int32Array(ids.length).fill(1), dims);
      else if (extra.name === ADDED_EMBEDDINGS_INPUT) {
        const table = (this.embeddings ?? new AddedEmbeddings(this.info.textDim)).table();
        feeds[extra.name] = floatTensor(extra.type, table.data, table.dims);
      } else throw new Error(`text_encoder/model.onnx has an unexpected input ${extra.name}`);
    }
    const outputs = outputInfos(session);
    const outName = (outputs.find((o) => o.name === 'last_hidden_state') ?? outputs[0])!.name;
    const t0 = performance.now();
    const run = session.run(feeds, [outName]);
    this.textRuns.add(run);
    const res = await run.finally(() => this.textRuns.delete(run));
    this.stats.textCalls++;
    this.stats.textMs += performance.now() - t0;
    return tensorToFloat32(res[outName]!);
  }

  /** Image in [0,1] (CHW RGB) → scaled latent [C, H/8, W/8]. */
  async vaeEncode(image: ImageValue): Promise<Float32Array> {
    this.alive();
    const { width: W, height: H } = image;
    const f = this.info.vaeDownsample;
    if (!Number.isInteger(W) || !Number.isInteger(H) || W < f || H < f || W % f !== 0 || H % f !== 0) {
      throw new Error(`image size ${W}×${H} is not a multiple of ${f}: the VAE needs width and height divisible by ${f}`);
    }
    if (image.data.length !== 3 * W * H) {
      throw new Error(`image data has ${image.data.length} values, an RGB ${W}×${H} image has ${3 * W * H}`);
    }
    const x = new Float32Array(image.data.length);
    for (let i = 0; i < x.length; i++) x[i] = image.data[i]! * 2 - 1;
    const input = findInput(inputInfos(this.vaeEncoder), ['sample'], 0, 'sample', 'vae_encoder/model.onnx');
    const outputs = outputInfos(this.vaeEncoder);
    const outName = (outputs.find((o) => o.name === 'latent_sample') ?? outputs[0])!.name;
    const t0 = performance.now();
    const res = await this.vaeEncoder.run({ [input.name]: floatTensor(input.type, x, [1, 3, H, W]) }, [outName]);
    this.stats.vaeCalls++;
    this.stats.vaeMs += performance.now() - t0;
    const out = res[outName]!;
    const C = this.info.latentChannels;
    const [, ch, h, w] = out.dims as number[];
    if (h !== H / f || w !== W / f) throw new Error(`vae_encoder returned a ${w}×${h} latent for a ${W}×${H} image`);
    if (ch !== C && ch !== 2 * C) throw new Error(`vae_encoder returned ${ch} channels; expected ${C} (mean) or ${2 * C} (mean and logvar)`);
    this.info.vaeEncoderChannels = ch!;
    const data = tensorToFloat32(out);
    // Mean + logvar exports: the mean is the first C channels (the posterior mode, as in the reference).
    const latent = new Float32Array(C * h * w);
    const s = this.info.vaeScalingFactor;
    for (let i = 0; i < latent.length; i++) latent[i] = data[i]! * s;
    return latent;
  }

  /** Scaled latent [C, h, w] → image in [0,1]: (clamp(decoder(latent / scaling), −1, 1) + 1) / 2. */
  async vaeDecode(latent: Float32Array, latentW: number, latentH: number): Promise<ImageValue> {
    this.alive();
    const C = this.info.latentChannels;
    if (latent.length !== C * latentW * latentH) {
      throw new Error(`latent has ${latent.length} values, a ${C}×${latentH}×${latentW} latent has ${C * latentW * latentH}`);
    }
    const s = this.info.vaeScalingFactor;
    const z = new Float32Array(latent.length);
    for (let i = 0; i < z.length; i++) z[i] = latent[i]! / s;
    const input = findInput(inputInfos(this.vaeDecoder), ['latent_sample'], 0, 'latent_sample', 'vae_decoder/model.onnx');
    const outputs = outputInfos(this.vaeDecoder);
    const outName = (outputs.find((o) => o.name === 'sample') ?? outputs[0])!.name;
    const t0 = performance.now();
    const res = await this.vaeDecoder.run({ [input.name]: floatTensor(input.type, z, [1, C, latentH, latentW]) }, [outName]);
    this.stats.vaeCalls++;
    this.stats.vaeMs += performance.now() - t0;
    const out = res[outName]!;
    const [, ch, H, W] = out.dims as number[];
    if (ch !== 3) throw new Error(`vae_decoder returned ${ch} channels, expected 3 (RGB)`);
    const data = tensorToFloat32(out);
    const img = new Float32Array(3 * H! * W!);
    for (let i = 0; i < img.length; i++) {
      const v = data[i]!;
      img[i] = ((v < -1 ? -1 : v > 1 ? 1 : v) + 1) / 2;
    }
    return { width: W!, height: H!, data: img };
  }

  /** Throws a user-facing error, naming the nearest sizes it takes, for a latent size the UNet cannot take. */
  checkLatentSize(w: number, h: number): void {
    this.info.latentSizes.check(w, h, this.info.vaeDownsample);
  }

  /**
   * One UNet call on `batch` rows: sample [batch, C, h, w], encoder_hidden_states [batch, k·L, D] (k chunks of long prompts),
   * every row at timestep t. Returns the predicted noise [batch, C, h, w] as float32, valid until the
   * next call (fp16 UNets convert into one buffer per binding and size; see Denoiser.unet).
   * `ehs` is taken as constant per array: do not change its contents between calls (fp16 UNets
   * convert it once). `extras` runs a rewritten UNet (other binding, extra feeds) through the same path.
   */
  async unet(sample: Float32Array, batch: number, h: number, w: number, t: number, ehs: Float32Array, extras: UnetCallExtras = {}): Promise<Float32Array> {
    this.alive();
    return this.unetSlot.exclusive(async () => {
      this.alive();
      const slot = this.unetSlot.session;
      try {
        return await this.unetOn(slot, sample, batch, h, w, t, ehs, extras);
      } catch (e) {
        // A session that refuses one-token pads (a fixed sequence length inside) gets full ones.
        if (!this.unetSlot.refusePads(slot)) throw e;
        return this.unetOn(slot, sample, batch, h, w, t, ehs, extras);
      }
    });
  }

  private async unetOn(
    slot: SlotSession,
    sample: Float32Array,
    batch: number,
    h: number,
    w: number,
    t: number,
    ehs: Float32Array,
    extras: UnetCallExtras,
  ): Promise<Float32Array> {
    const b = slot.binding;
    const C = this.info.latentChannels;
    if (sample.length !== batch * C * h * w) {
      throw new Error(`UNet sample has ${sample.length} values, [${batch}, ${C}, ${h}, ${w}] needs ${batch * C * h * w}`);
    }
    this.checkLatentSize(w, h);
    checkFixedBatch(b, batch);
    const rowLen = ehs.length / batch;
    const D = this.info.textDim;
    if (!Number.isInteger(rowLen) || rowLen % D !== 0) {
      throw new Error(`encoder_hidden_states has ${ehs.length} values, not ${batch} rows of [L, ${D}]`);
    }
    const fixedTokens = numericDim(b.ehs.shape[1]);
    if (fixedTokens !== null && fixedTokens !== rowLen / D) {
      throw new UserError(
        `this UNet takes exactly ${fixedTokens} text tokens, and a prompt read in chunks has ${rowLen / D}: set Encode Text's long prompt to "truncate" for this model`,
      );
    }
    const tsDims = timestepDims(b.timestep, batch);
    const tsCount = tsDims.length === 0 ? 1 : tsDims[0]!;
    const feeds: Record<string, OrtTensor> = {
      [b.sample.name]: this.buffers.feed(b.sample, sample, [batch, C, h, w], false),
      [b.timestep.name]: numberTensor(b.timestep.type, new Float64Array(tsCount).fill(t), tsDims),
      [b.ehs.name]: this.buffers.feed(b.ehs, ehs, [batch, rowLen / D, D], true),
      ...this.unetSlot.extraFeeds(slot, batch, h, w, extras.merge),
    };
    const t0 = performance.now();
    const res = await b.session.run(feeds, [b.output]).catch((e: unknown) => {
      throw this.info.latentSizes.translateRuntimeError(e, w, h, this.info.vaeDownsample) ?? e;
    });
    this.stats.unetCalls++;
    this.stats.unetRows += batch;
    this.stats.unetMs += performance.now() - t0;
    const result = res[b.output]!;
    if (result.size !== sample.length) throw new Error(`UNet returned ${result.size} values for a sample of ${sample.length}`);
    return this.buffers.output(b, result);
  }

  /** Releases every session; the pipeline cannot be used afterwards. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.textCache.clear();
    const unet = await this.unetSlot.exclusive(async () => this.unetSlot.session.binding.session);
    const maps = await this.attentionMaps?.catch(() => null);
    const sessions = [this.textEncoder, unet, this.vaeEncoder, this.vaeDecoder, ...(maps ? [maps.binding.session] : [])];
    await Promise.all(sessions.map((s) => s.release().catch(() => undefined)));
  }
}
