/**
 * onnxruntime sessions on a thread of their own. onnxruntime-node's `InferenceSession.run` is async in
 * name only: the binding runs the whole graph synchronously on the calling thread (measured: one demo
 * UNet call of 3 s let a 5 ms interval fire once), and loading a model is synchronous too. On the main
 * thread that froze HTTP and the socket for a whole UNet call (the health check answered in 355 ms at
 * 2048 px, and clients saw connection resets). Here every session lives in one worker thread; the main
 * thread sends feeds (copied: callers reuse their buffers) and gets the outputs back (moved, not copied,
 * when onnxruntime allows it). One thread, so calls run one after another, as jobs do.
 *
 * Messages (inference-thread.worker.mjs): {id, op: 'create', path, options} → {session, inputNames,
 * outputNames, inputMetadata, outputMetadata}; {id, op: 'run', session, feeds, fetches} → {outputs};
 * {id, op: 'release', session} → {}; a failure answers {id, ok: false, name, message}.
 */
import { Worker } from 'node:worker_threads';
import ort from 'onnxruntime-node';

type ValueMetadata = ort.InferenceSession.ValueMetadata;
type PlainTensor = { type: ort.Tensor.Type; dims: readonly number[]; data: ort.Tensor.DataType };

/** The part of an onnxruntime session the engine uses; sessions of the inference thread have exactly this. */
export interface Session {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: readonly ValueMetadata[];
  readonly outputMetadata: readonly ValueMetadata[];
  run(feeds: Record<string, ort.Tensor>, fetches?: readonly string[]): Promise<Record<string, ort.Tensor>>;
  release(): Promise<void>;
}

interface Reply {
  id: number;
  ok: boolean;
  name?: string;
  message?: string;
  [key: string]: unknown;
}

class InferenceThread {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();

  call(message: Record<string, unknown>): Promise<Reply> {
    const worker = this.start();
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // While a call is out, the thread keeps the process alive; an idle one does not.
      worker.ref();
      worker.postMessage({ id, ...message });
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./inference-thread.worker.mjs', import.meta.url));
    worker.on('message', (reply: Reply) => {
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if (!waiter) return;
      if (reply.ok) waiter.resolve(reply);
      else waiter.reject(Object.assign(new Error(reply.message ?? 'inference failed'), reply.name ? { name: reply.name } : {}));
    });
    const fail = (err: Error) => {
      if (this.worker === worker) this.worker = null;
      for (const waiter of this.pending.values()) waiter.reject(new Error(`the inference thread stopped: ${err.message}`));
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
    worker.unref();
    this.worker = worker;
    return worker;
  }
}

const thread = new InferenceThread();

/** Sessions opened and not yet released, in this process (the bench and the one-copy test read it). */
let liveSessions = 0;
export function openSessionCount(): number {
  return liveSessions;
}

class ThreadSession implements Session {
  private released = false;

  constructor(
    private readonly id: number,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
    readonly inputMetadata: readonly ValueMetadata[],
    readonly outputMetadata: readonly ValueMetadata[],
  ) {}

  async run(feeds: Record<string, ort.Tensor>, fetches?: readonly string[]): Promise<Record<string, ort.Tensor>> {
    if (this.released) throw new Error('this session was released');
    const plain: Record<string, PlainTensor> = {};
    for (const [name, t] of Object.entries(feeds)) plain[name] = { type: t.type, dims: t.dims, data: t.data };
    const reply = await thread.call({ op: 'run', session: this.id, feeds: plain, ...(fetches ? { fetches: [...fetches] } : {}) });
    const outputs: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(reply.outputs as Record<string, PlainTensor>)) {
      outputs[name] = new ort.Tensor(t.type, t.data as never, t.dims);
    }
    return outputs;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    liveSessions--;
    await thread.call({ op: 'release', session: this.id });
  }
}

/** Opens a model on the inference thread (`options` as for onnxruntime's InferenceSession.create). */
export async function openSession(modelPath: string, options: ort.InferenceSession.SessionOptions): Promise<Session> {
  const r = await thread.call({ op: 'create', path: modelPath, options });
  liveSessions++;
  return new ThreadSession(
    r.session as number,
    r.inputNames as string[],
    r.outputNames as string[],
    r.inputMetadata as ValueMetadata[],
    r.outputMetadata as ValueMetadata[],
  );
}
