// A conversion thread (see convert-thread.ts): loads the TypeScript converter through tsx's loader, so
// that it runs in a worker of any host (the studio under tsx, vitest's workers, plain node) alike.
import { register } from 'tsx/esm/api';

register();
await import('./convert-job.ts');
