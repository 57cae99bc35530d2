/** The diffusers ONNX layout of a Stable Diffusion 1.x folder, shared by the loader and the fetcher. */

/** Files without which a folder cannot be loaded; their absence means "not an SD ONNX export". */
export const REQUIRED_FILES = [
  'model_index.json',
  'text_encoder/model.onnx',
  'unet/model.onnx',
  'vae_encoder/model.onnx',
  'vae_decoder/model.onnx',
  'tokenizer/vocab.json',
  'tokenizer/merges.txt',
] as const;
