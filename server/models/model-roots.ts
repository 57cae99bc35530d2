/**
 * Where Load Model may read models: the models folders the operator allowed (`<data>/models`, the
 * studio's own `models/` where `npm run fetch-model` puts downloads, and any `--models-root`). A graph
 * comes from whoever can reach the API, so its model path must not become a probe of the server's
 * disk: every path outside those folders, and every path that is not there, gets the same message,
 * and no message a client sees carries the server's absolute paths.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { PROJECT_ROOT } from '../util/project.ts';
import { UserError } from '../engine/errors.ts';

/** The folders every studio allows: `<data>/models` and the project's `models/`. */
export function defaultModelRoots(dataDir: string): string[] {
  return [path.resolve(dataDir, 'models'), path.resolve(PROJECT_ROOT, 'models')];
}

/** True when `file` is `root` or lies below it (after resolving "." and ".."). */
export function isInside(file: string, root: string): boolean {
  const rel = path.relative(path.resolve(root), path.resolve(file));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

export function refusedModelMessage(model: string): string {
  return (
    `no model folder ${JSON.stringify(model)} in the models folders (<data>/models, the studio's models/, ` +
    'or one added with --models-root): put the model there, or start the studio with --models-root <folder>'
  );
}

/**
 * The folder a Load Model path names. Relative paths are looked up under each root in order, then
 * under the studio's folder ("models/NAME", as `npm run fetch-model` prints it); absolute ones are
 * taken as they are. Only a folder inside a root is returned.
 */
export async function resolveModelDir(model: string, roots: readonly string[]): Promise<string> {
  return resolveModelPath(model, roots, { files: false });
}

/**
 * As resolveModelDir, for a folder or (with `files`) a single file such as a `.safetensors` checkpoint or
 * LoRA; the same one message for every path that is outside the roots or not there.
 */
export async function resolveModelPath(model: string, roots: readonly string[], options: { files: boolean; field?: string }): Promise<string> {
  const candidates = path.isAbsolute(model) ? [path.resolve(model)] : [...roots.map((r) => path.resolve(r, model)), path.resolve(PROJECT_ROOT, model)];
  for (const dir of candidates) {
    if (!roots.some((root) => isInside(dir, root))) continue;
    try {
      const st = await stat(dir);
      if (st.isDirectory() || (options.files && st.isFile())) return dir;
    } catch {
      /* not there: try the next */
    }
  }
  throw new UserError(refusedModelMessage(model), options.field ?? 'model');
}

/** How a folder is named to the user: relative to the studio's folder when inside it, else by its root-relative path. */
function displayName(dir: string, root: string): string {
  return isInside(dir, PROJECT_ROOT) ? path.relative(PROJECT_ROOT, dir) : path.relative(root, dir);
}

/** Every sub-folder of the roots that `accept` takes, as the name that resolves back to it (shadowed ones left out). */
export async function listModelFolders(roots: readonly string[], accept: (dir: string) => Promise<boolean>): Promise<{ model: string; label: string }[]> {
  const found: { model: string; label: string }[] = [];
  const seen = new Set<string>();
  for (const root of roots) {
    let names: string[];
    try {
      names = (await readdir(root, { withFileTypes: true }))
        .filter((d) => d.isDirectory())
        .map((d) => d.name)
        .sort();
    } catch {
      continue; // no such folder
    }
    for (const name of names) {
      const dir = path.join(root, name);
      if (seen.has(dir) || !(await accept(dir))) continue;
      seen.add(dir);
      const model = displayName(dir, root);
      if ((await resolveModelDir(model, roots).catch(() => null)) !== dir) continue;
      found.push({ model, label: name });
    }
  }
  return found;
}

/** `text` with the folder's absolute path replaced by the name the user gave it (errors of model files name it). */
export function withShownPath(text: string, dir: string, shown: string): string {
  return text.split(dir).join(shown);
}
