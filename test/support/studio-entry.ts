/**
 * Test entry: the real server (`server` …main.ts flags) or the real worker (`worker` …worker flags) as a
 * child process, with the test node catalog instead of the diffusion nodes, so the distributed and
 * restart tests run whole processes without models. The server serves the built client (dist/client)
 * when there is one.
 */
import { runWorker } from '../../server/cli/worker.ts';
import { main } from '../../server/main.ts';
import { testNodes } from './test-nodes.ts';

const [role, ...args] = process.argv.slice(2);
const run = role === 'worker' ? runWorker(args, { catalog: testNodes, previewIntervalMs: 0 }) : main(args, { catalog: testNodes, previewIntervalMs: 0 });
run.then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`error: ${(err as Error)?.message ?? String(err)}`);
    process.exit(1);
  },
);
