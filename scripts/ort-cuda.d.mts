/** Types of scripts/ort-cuda.mjs (plain JavaScript so that postinstall needs nothing but node). */
export interface ProviderTable {
  onnxruntime: string;
  cudaMajor: number;
  package: string;
  version: string;
  integrity: string;
  tarballBytes: number;
  pathInPackage: string;
  files: Record<string, string>;
  manifest: string;
  runtimeLoaded: Record<string, string>;
  pip: Record<string, string>;
}
export const PROVIDER_TABLE: ProviderTable;
export const MANIFEST_NAME: string;
export function findOnnxruntimeNode(from?: string): { dir: string; version: string } | null;
export function bindingDir(ortDir: string, platform?: string, arch?: string): string;
export function sha512Integrity(file: string): Promise<string>;
export function checkInstalled(dir: string, table?: ProviderTable): Promise<{ files: Record<string, 'ok' | 'mismatch' | 'missing'>; complete: boolean }>;
export function npmPack(spec: string, dest: string): { file: string; integrity: string };
export function extractFiles(tarball: string, dest: string, table?: ProviderTable): Record<string, string>;
export function installFromTarball(
  tarball: string,
  binDir: string,
  opts?: { table?: ProviderTable; packIntegrity?: string; log?: (line: string) => void },
): Promise<void>;
export function installCudaProvider(opts?: {
  ortDir?: string;
  table?: ProviderTable;
  pack?: (spec: string, dest: string) => { file: string; integrity: string };
  log?: (line: string) => void;
  force?: boolean;
  /** Install from this local tarball instead of fetching with npm pack. */
  tarball?: string;
}): Promise<'installed' | 'already-installed'>;
export function nvidiaDriverPresent(): boolean;
