/**
 * Command line entry: `tsx server/main.ts [--port 8188] [--host 127.0.0.1] [--token T]
 * [--ep auto|cuda|webgpu|cpu] [--data ./data]`. Environment: PORT, HOST, DUALSTYLE_TOKEN,
 * DUALSTYLE_EP, DUALSTYLE_DATA. Flags win over the environment.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createStudio, type Studio } from './app.ts';
import { EXECUTION_PROVIDERS, type ExecutionProviderRequest } from './engine/onnx/runtime.ts';

const USAGE = `usage: npm start -- [--port 8188] [--host 127.0.0.1] [--token T] [--ep auto|cuda|webgpu|cpu] [--data ./data]

  --port   port to listen on (env PORT; default 8188; 0 = any free port)
  --host   address to listen on (env HOST; default 127.0.0.1; anything else needs --token)
  --token  access token required by the API and the socket (env DUALSTYLE_TOKEN)
  --ep     execution provider for inference (env DUALSTYLE_EP; default auto: CUDA if available, else CPU)
  --data   data folder for saved graphs, uploads and results (env DUALSTYLE_DATA; default ./data)`;

class UsageError extends Error {}

export interface CliOptions {
  port: number;
  host: string;
  token?: string;
  ep: ExecutionProviderRequest;
  dataDir: string;
}

export function parseCli(argv: string[], env: NodeJS.ProcessEnv = process.env): CliOptions | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string', short: 'p' },
        host: { type: 'string' },
        token: { type: 'string' },
        ep: { type: 'string' },
        data: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
      strict: true,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help';
  // An empty environment variable counts as unset.
  const portText = values.port ?? (env.PORT || '8188');
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`--port must be a whole number from 0 to 65535, got ${JSON.stringify(portText)}`);
  }
  const ep = (values.ep ?? (env.DUALSTYLE_EP || 'auto')) as ExecutionProviderRequest;
  if (!EXECUTION_PROVIDERS.includes(ep)) throw new UsageError(`--ep must be one of ${EXECUTION_PROVIDERS.join(', ')}, got ${JSON.stringify(ep)}`);
  const host = values.host || env.HOST || '127.0.0.1';
  const token = values.token || env.DUALSTYLE_TOKEN || undefined;
  return {
    port,
    host,
    ...(token ? { token } : {}),
    ep,
    dataDir: path.resolve(values.data || env.DUALSTYLE_DATA || 'data'),
  };
}

export async function main(argv: string[]): Promise<number> {
  let cli: CliOptions | 'help';
  try {
    cli = parseCli(argv);
  } catch (err) {
    console.error(`error: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (cli === 'help') {
    console.log(USAGE);
    return 0;
  }
  let studio: Studio;
  try {
    studio = await createStudio({ dataDir: cli.dataDir, host: cli.host, port: cli.port, token: cli.token, executionProvider: cli.ep });
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    return 1;
  }
  console.log(`Dual Style Studio running at ${studio.url}`);
  console.log(`execution provider: ${cli.ep}${cli.ep === 'auto' ? ' (CUDA when available, else CPU)' : ''}`);
  console.log(`data folder: ${cli.dataDir}`);
  if (cli.token) console.log('access token required (Authorization: Bearer <token>, or ?token=<token>)');

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      // A second signal while a stuck job is being cancelled stops waiting (hence `on`, not `once`).
      if (stopping) {
        console.error('forced exit');
        process.exit(1);
      }
      stopping = true;
      console.log(`${signal}: stopping (cancelling running jobs)...`);
      studio.close().then(resolve, (err: unknown) => {
        console.error(`error while stopping: ${(err as Error).message}`);
        resolve();
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return 0;
}

// fileURLToPath, not URL.pathname: the latter keeps %20 and friends, so under a folder with a space in
// its name the server would silently never start.
const isEntry = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isEntry) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`error: ${(err as Error)?.message ?? String(err)}`);
      process.exit(1);
    },
  );
}
