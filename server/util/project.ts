/** The project's root folder (where package.json, graphs/ and .cache/ are), wherever the server is started from. */
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Where the studio keeps what it derives and can always derive again (demo model, rewritten UNets). */
export const CACHE_ROOT = fileURLToPath(new URL('../../.cache/', import.meta.url));
