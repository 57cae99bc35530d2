/**
 * The digest of a file, read in chunks (the CUDA provider libraries are hundreds of megabytes): the one
 * helper behind the Hub download's checksums, the CUDA doctor's and `npm run install:cuda`'s file checks.
 * Plain JavaScript (typed by file-hash.d.mts) because scripts/ort-cuda.mjs runs at postinstall with
 * nothing but node.
 */
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';

/** `prefix` is hashed before the content (a git blob id is the sha1 of "blob <size>\0" + content). */
export async function hashFile(file, { algorithm = 'sha256', encoding = 'hex', prefix } = {}) {
  const hash = createHash(algorithm);
  if (prefix) hash.update(prefix);
  for await (const chunk of createReadStream(file)) hash.update(chunk);
  return hash.digest(encoding);
}

/** The sha256 (hex) of a file, synchronously (the CUDA doctor answers synchronously); null where it cannot be opened. */
export function sha256FileSync(file) {
  let fd;
  try {
    fd = openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    const hash = createHash('sha256');
    const buf = Buffer.alloc(8 << 20);
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) hash.update(buf.subarray(0, n));
    return hash.digest('hex');
  } finally {
    closeSync(fd);
  }
}
