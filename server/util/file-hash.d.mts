/** Types of server/util/file-hash.mjs. */
export function hashFile(file: string, opts?: { algorithm?: 'sha256' | 'sha1' | 'sha512'; encoding?: 'hex' | 'base64'; prefix?: string }): Promise<string>;
export function sha256FileSync(file: string): string | null;
