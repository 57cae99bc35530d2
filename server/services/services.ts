/**
 * What the server hands every node that runs: its execution provider, its folders, its uploads, its
 * loaded models and its preview decoder. The runner (server/executor/graph-runner.ts) builds it; a CLI
 * or a test harness may build its own. It lives below the nodes so that the executor and the HTTP layer
 * need nothing from the node catalog to speak of it.
 */
import type { ExecutionProviderRequest } from '../engine/runtime/runtime.ts';
import type { ImageValue } from '../engine/values.ts';
import type { LoadedModels } from './loaded-models.ts';

/**
 * A preview decoder the server was given (`--preview-decoder`; engine/sd/preview-decoder.ts): scaled
 * latent [4, h, w] → RGB image, behind a time budget.
 */
export interface LatentPreviewDecoder {
  /** False once it failed: frames go back to the latent→RGB projection. */
  readonly usable: boolean;
  /** True when decoding a frame now keeps the decoder within its share of the run time. */
  due(): boolean;
  decode(latent: Float32Array, width: number, height: number): Promise<ImageValue>;
}

/** Process-wide services a node may use; provided by the server (or a CLI or test harness). */
export interface Services {
  /** Execution provider requested on the command line. */
  executionProvider: ExecutionProviderRequest;
  /** CUDA device index (`--gpu N`); 0 when absent. */
  gpu?: number;
  /** Folder for user data (uploads, results). */
  dataDir: string;
  /** The only folders Load Model may read models from (<data>/models, the project's models/, --models-root). */
  modelRoots: readonly string[];
  /** Decodes the samplers' preview frames instead of the latent→RGB projection (`--preview-decoder`). */
  previewDecoder?: LatentPreviewDecoder;
  /** The bytes of an uploaded file by its name; null when there is no such upload. */
  readUpload(name: string): Promise<Buffer | null>;
  /** The loaded models, by kind: nodes load SD pipelines, CLIP and LPIPS models through these. */
  models: LoadedModels;
}
