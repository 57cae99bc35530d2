// The inference thread: owns every onnxruntime session of the process (see inference-thread.ts, which
// documents the messages). Plain JavaScript so that it loads in a worker of any host: tsx, vitest's
// workers and plain node alike, without a TypeScript loader.
import { parentPort } from 'node:worker_threads';
import ort from 'onnxruntime-node';

/** @type {Map<number, import('onnxruntime-node').InferenceSession>} */
const sessions = new Map();
let nextId = 1;

/** A tensor as sent between threads. */
const plain = (t) => ({ type: t.type, dims: [...t.dims], data: t.data });

async function handle(msg) {
  switch (msg.op) {
    case 'create': {
      const session = await ort.InferenceSession.create(msg.path, msg.options);
      const id = nextId++;
      sessions.set(id, session);
      return {
        session: id,
        inputNames: session.inputNames,
        outputNames: session.outputNames,
        inputMetadata: session.inputMetadata,
        outputMetadata: session.outputMetadata,
      };
    }
    case 'run': {
      const session = sessions.get(msg.session);
      if (!session) throw new Error('this session was released');
      const feeds = {};
      for (const [name, t] of Object.entries(msg.feeds)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
      const results = await session.run(feeds, msg.fetches);
      const outputs = {};
      const transfer = [];
      for (const [name, t] of Object.entries(results)) {
        outputs[name] = plain(t);
        // Ours alone from here on: hand the buffer over instead of copying it.
        if (ArrayBuffer.isView(t.data) && t.data.buffer instanceof ArrayBuffer && !transfer.includes(t.data.buffer)) transfer.push(t.data.buffer);
      }
      return { outputs, transfer };
    }
    case 'release': {
      const session = sessions.get(msg.session);
      sessions.delete(msg.session);
      await session?.release();
      return {};
    }
    default:
      throw new Error(`unknown inference-thread request ${String(msg.op)}`);
  }
}

parentPort.on('message', (msg) => {
  handle(msg).then(
    ({ transfer, ...reply }) => {
      try {
        parentPort.postMessage({ id: msg.id, ok: true, ...reply }, transfer ?? []);
      } catch {
        // A buffer that cannot be transferred (an external one): send a copy.
        parentPort.postMessage({ id: msg.id, ok: true, ...reply });
      }
    },
    (err) => parentPort.postMessage({ id: msg.id, ok: false, name: err?.name, message: err instanceof Error ? err.message : String(err) }),
  );
});
