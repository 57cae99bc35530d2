/**
 * Shared pieces of the fuzz suite (test/fuzz-*.test.ts): how many cases to run, arbitraries for graph
 * JSON and hostile HTTP requests, a raw HTTP client that sends exactly what it is given, and the
 * report `npm run fuzz` prints.
 *
 * Case counts: FUZZ_CASES is the total over the fuzz files (default 2,400 for `npm test`;
 * `npm run fuzz` sets 10,000); each file takes its share.
 */
import http from 'node:http';
import fc from 'fast-check';

export const FUZZ_TOTAL = Number(process.env.FUZZ_CASES) > 0 ? Number(process.env.FUZZ_CASES) : 2400;
/** The seed, printed with every report: FUZZ_SEED reproduces a run. */
export const FUZZ_SEED = Number(process.env.FUZZ_SEED) || Date.now() % 2 ** 31;

export function casesFor(share: number): number {
  return Math.max(1, Math.round(FUZZ_TOTAL * share));
}

/** Counts what happened, and prints one line: cases, the histogram, the 5xx and crashes found. */
export class FuzzReport {
  readonly histogram = new Map<string, number>();
  cases = 0;
  serverErrors: string[] = [];
  crashes: string[] = [];

  constructor(readonly name: string) {}

  count(outcome: string | number): void {
    this.cases++;
    const key = String(outcome);
    this.histogram.set(key, (this.histogram.get(key) ?? 0) + 1);
  }

  line(): string {
    const hist = [...this.histogram]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, n]) => `${k}×${n}`)
      .join(' ');
    return `fuzz ${this.name}: ${this.cases} cases (seed ${FUZZ_SEED}); outcomes ${hist}; 5xx: ${this.serverErrors.length}; crashes: ${this.crashes.length}`;
  }
}

// ------------------------------------------------------------------------------------------------
// Graph JSON

/** Numbers JSON can carry (no NaN, no infinities, no -0): a graph reaches the server as JSON text. */
const num = fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => (x === 0 ? 0 : x));

/** Ids that exercise the edge cases: prototype names, dots, long, empty. */
const nodeId = fc.oneof(
  { weight: 30, arbitrary: fc.constantFrom('n', 'a', 'b', 'slow', 'save', 'img', 'model', '__proto__', 'constructor', 'toString') },
  { weight: 1, arbitrary: fc.constantFrom('', '.', 'x'.repeat(65), 'a b', 'ü') },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);

const socketName = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('value', 'sum', 'count', 'y', 'a', 'b', 'start', 'x', 'image', 'latent', 'model', 'inversion', 'mask') },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'hasOwnProperty', '') },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
);

/**
 * JSON nested `depth` deep ("[[[…]]]" or {"a":{"a":…}}), the shape that once amplified into 32 MB.
 * At most 2,000 levels, so that the test itself can still JSON.stringify it (V8 fails near 5,000);
 * deeper ones are sent as text (deepBody).
 */
export const deepJson = fc.tuple(fc.integer({ min: 1, max: 2000 }), fc.boolean()).map(([depth, arrays]) => {
  const value = JSON.parse(arrays ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)) as object;
  // fast-check prints counterexamples recursively; name this one instead (JSON ignores the symbol).
  Object.defineProperty(value, fc.toStringMethod, { value: () => `<JSON nested ${depth} deep>`, enumerable: false });
  return value as unknown;
});

const jsonish = fc.oneof({ weight: 5, arbitrary: fc.jsonValue({ maxDepth: 3 }) }, { weight: 1, arbitrary: deepJson });

function paramsFor() {
  return fc.oneof(
    { weight: 3, arbitrary: fc.record({ value: fc.oneof(num, fc.integer(), fc.string()) }, { requiredKeys: [] }) },
    {
      weight: 3,
      arbitrary: fc.record(
        {
          steps: fc.oneof(fc.integer({ min: 1, max: 3 }), fc.integer(), num),
          delayMs: fc.oneof(fc.constant(0), fc.integer({ min: -5, max: 3 })),
          offset: fc.oneof(fc.integer({ min: -2000, max: 2000 }), num),
          message: fc.string({ maxLength: 30 }),
          image: fc.oneof(fc.constantFrom('builtin:sample', '../../etc/passwd', '/etc/passwd', 'a.png'), fc.string({ maxLength: 20 })),
          model: fc.oneof(fc.constantFrom('demo', '/etc', '../../..', 'models/x'), fc.string({ maxLength: 20 })),
          max_side: fc.oneof(fc.integer({ min: 0, max: 5000 }), num),
        },
        { requiredKeys: [] },
      ),
    },
    { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), jsonish, { maxKeys: 4 }) },
    {
      weight: 1,
      arbitrary: fc.oneof(
        jsonish,
        deepJson.map((p) => ({ p })),
      ),
    },
  );
}

/** Graph files: mostly well-formed with wrong details, sometimes not graphs at all. */
export function graphJson(types: readonly string[]) {
  // Each field goes wrong now and then, so that a graph often has one problem, not always many.
  const often = <T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<unknown>) => fc.oneof({ weight: 40, arbitrary: good }, { weight: 1, arbitrary: bad });
  const node = fc.record(
    {
      id: nodeId,
      type: often(fc.constantFrom(...types), fc.string({ maxLength: 12 })),
      params: paramsFor(),
      position: often(fc.record({ x: fc.integer({ min: -2000, max: 2000 }), y: num }), jsonish),
      title: often(fc.string({ maxLength: 20 }), fc.oneof(fc.string({ minLength: 201, maxLength: 220 }), jsonish)),
      mode: often(fc.constantFrom('bypass', 'mute'), fc.string({ maxLength: 6 })),
    },
    { requiredKeys: ['id', 'type'] },
  );
  const edge = fc.record(
    {
      from: often(fc.record({ node: nodeId, output: socketName }), jsonish),
      to: often(fc.record({ node: nodeId, input: socketName }), jsonish),
      points: often(fc.array(fc.record({ x: fc.integer(), y: fc.integer() }), { maxLength: 3 }), jsonish),
    },
    { requiredKeys: ['from', 'to'] },
  );
  const graph = fc.record(
    {
      format: often(fc.constant('dualstyle-graph'), jsonish),
      version: often(fc.constant(1), fc.oneof(fc.integer(), num, jsonish)),
      nodes: often(fc.array(node, { maxLength: 6 }), jsonish),
      edges: often(fc.array(edge, { maxLength: 6 }), jsonish),
      meta: often(fc.record({ title: fc.string({ maxLength: 30 }), note: fc.string({ maxLength: 30 }) }, { requiredKeys: [] }), jsonish),
    },
    { requiredKeys: ['format', 'version', 'nodes', 'edges'] },
  );
  return fc.oneof({ weight: 12, arbitrary: graph }, { weight: 1, arbitrary: jsonish });
}

// ------------------------------------------------------------------------------------------------
// HTTP

export interface RawRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

/** Sends exactly `req` (Host included) to 127.0.0.1:port; a connection error resolves with status 0. */
export function send(port: number, req: RawRequest, timeoutMs = 20_000): Promise<RawResponse & { error?: string }> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: RawResponse & { error?: string }) => {
      if (!settled) {
        settled = true;
        resolve(r);
      }
    };
    let request: http.ClientRequest;
    try {
      request = http.request({ host: '127.0.0.1', port, method: req.method, path: req.path, headers: req.headers, agent, setHost: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', (e) => done({ status: 0, headers: {}, body: Buffer.alloc(0), error: e.message }));
      });
    } catch (e) {
      // Node refuses to send it (invalid header characters...): not the server's doing.
      done({ status: -1, headers: {}, body: Buffer.alloc(0), error: (e as Error).message });
      return;
    }
    request.setTimeout(timeoutMs, () => request.destroy(new Error('timeout')));
    request.on('error', (e) => done({ status: 0, headers: {}, body: Buffer.alloc(0), error: e.message }));
    request.end(req.body);
  });
}

const pathSegment = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'demo-template',
      'My%20graph',
      'x',
      '..',
      '%2e%2e',
      '..%2F..%2Fetc%2Fpasswd',
      '%2F',
      '%5C',
      '%00',
      '%zz',
      '__proto__',
      'constructor',
      'sample',
      'builtin%3Asample',
      '0123456789abcdef0123456789abcdef.png',
      'test-0123456789abcdef.png',
      'a'.repeat(300),
      '',
      '.hidden',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 24 }).map(encodeURIComponent) },
);

const route = fc.oneof(
  fc.constantFrom(
    '/api/health',
    '/api/catalog',
    '/api/models',
    '/api/queue',
    '/api/graphs',
    '/api/jobs',
    '/api/validate',
    '/api/uploads',
    '/',
    '/api',
    '/api/',
  ),
  pathSegment.map((s) => `/api/graphs/${s}`),
  pathSegment.map((s) => `/api/jobs/${s}`),
  pathSegment.map((s) => `/api/jobs/${s}/cancel`),
  pathSegment.map((s) => `/api/uploads/${s}`),
  pathSegment.map((s) => `/api/uploads/${s}/info`),
  pathSegment.map((s) => `/api/results/${s}`),
  pathSegment.map((s) => `/api/builtin/${s}.png`),
  pathSegment.map((s) => `/api/${s}`),
  pathSegment.map((s) => `/${s}`),
  pathSegment.map((s) => `/socket.io/?EIO=4&transport=polling&sid=${s}`),
  fc.constantFrom('/socket.io/?EIO=4&transport=polling', '/socket.io/?EIO=3&transport=websocket', '/socket.io/'),
);

const query = fc.oneof(
  { weight: 4, arbitrary: fc.constant('') },
  { weight: 1, arbitrary: fc.constantFrom('?requireOutput=1', '?requireOutput=true', '?token=x', '?token=', '?a[b]=1&a[c]=2', '?__proto__[x]=1') },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }).map((s) => `?q=${encodeURIComponent(s)}`) },
);

const contentType = fc.option(
  fc.oneof(
    {
      weight: 6,
      arbitrary: fc.constantFrom(
        'application/json',
        'application/json; charset=utf-8',
        'application/json; charset=utf-16',
        'application/json; charset=latin1',
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'image/png',
        'image/jpeg',
        'image/gif',
        'application/octet-stream',
      ),
    },
    { weight: 1, arbitrary: fc.string({ maxLength: 20 }).filter((s) => /^[\x21-\x7e]*$/.test(s)) },
  ),
  { freq: 4 },
);

/** A PNG made of bytes: a valid 1×1 one, so some uploads succeed. */
const PNG_1x1 = Buffer.from(
  '89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8ffff3f0005fe02fea7d66b0b0000000049454e44ae426082',
  'hex',
);

/** A graph body nested up to 100,000 deep somewhere (as text: nothing in JavaScript could stringify it). */
const deepBody = fc.tuple(fc.integer({ min: 1, max: 100_000 }), fc.constantFrom('meta', 'params', 'format', 'position', 'edges')).map(([depth, where]) => {
  const deep = '['.repeat(depth) + ']'.repeat(depth);
  const node = (params: string, position: string) => `{"id":"n","type":"Constant","params":${params},"position":${position}}`;
  const graph = {
    meta: `{"format":"dualstyle-graph","version":1,"nodes":[],"edges":[],"meta":{"x":${deep}}}`,
    params: `{"format":"dualstyle-graph","version":1,"nodes":[${node(`{"value":${deep}}`, '{"x":0,"y":0}')}],"edges":[]}`,
    format: `{"format":${deep},"version":1,"nodes":[],"edges":[]}`,
    position: `{"format":"dualstyle-graph","version":1,"nodes":[${node('{}', deep)}],"edges":[]}`,
    edges: `{"format":"dualstyle-graph","version":1,"nodes":[],"edges":${deep}}`,
  }[where];
  return Buffer.from(`{"graph":${graph}}`);
});

export function body(types: readonly string[]) {
  return fc.option(
    fc.oneof(
      {
        weight: 6,
        arbitrary: fc
          .record({ graph: graphJson(types), outputs: fc.option(fc.array(nodeId, { maxLength: 3 }), { freq: 5 }) }, { requiredKeys: ['graph'] })
          .map((v) => Buffer.from(JSON.stringify(v))),
      },
      { weight: 2, arbitrary: graphJson(types).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')) },
      { weight: 2, arbitrary: fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')) },
      { weight: 1, arbitrary: fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(PNG_1x1, PNG_1x1.subarray(0, 30), Buffer.from('{"graph": {"format": '), Buffer.from('{"__proto__": {"polluted": 1}}')),
      },
      { weight: 1, arbitrary: deepBody },
    ),
    { freq: 5 },
  );
}

/**
 * Requests as the studio's client would make them (right method, JSON or image body, the header),
 * with fuzzed names and bodies: these reach the routes' own logic.
 */
function wellFormed(port: number, types: readonly string[]) {
  const json = (v: unknown) => Buffer.from(JSON.stringify(v) ?? 'null');
  const graphBody = fc.record({ graph: graphJson(types), outputs: fc.option(fc.array(nodeId, { maxLength: 2 }), { freq: 6 }) }, { requiredKeys: ['graph'] });
  // Jobs that run (on the test catalog): a number, counted up a few steps, saved as a picture or shown.
  const runnable = fc
    .record({
      value: num,
      steps: fc.integer({ min: 1, max: 3 }),
      output: fc.constantFrom('Save', 'Show'),
      title: fc.string({ maxLength: 40 }),
      front: fc.boolean(),
    })
    .map((j) => ({
      front: j.front,
      graph: {
        format: 'dualstyle-graph',
        version: 1,
        nodes: [
          { id: 'n', type: 'Constant', params: { value: j.value } },
          { id: 'slow', type: 'SlowCounter', params: { steps: j.steps, delayMs: 0 } },
          { id: 'out', type: j.output },
        ],
        edges: [
          { from: { node: 'n', output: 'value' }, to: { node: 'slow', input: 'start' } },
          { from: { node: 'slow', output: 'count' }, to: { node: 'out', input: 'value' } },
        ],
        meta: { title: j.title },
      },
    }));
  const call = fc.oneof(
    graphBody.map((b) => ({ method: 'POST', path: '/api/jobs', type: 'application/json', body: json(b) })),
    runnable.map((b) => ({ method: 'POST', path: '/api/jobs', type: 'application/json', body: json(b) })),
    fc.tuple(fc.constantFrom('POST /api/jobs', 'POST /api/validate', 'PUT /api/graphs/deep'), deepBody).map(([route, body]) => {
      const [method, path] = route.split(' ') as [string, string];
      return { method, path, type: 'application/json', body };
    }),
    graphBody.map((b) => ({ method: 'POST', path: '/api/validate?requireOutput=1', type: 'application/json', body: json(b) })),
    fc.tuple(pathSegment, graphBody).map(([name, b]) => ({ method: 'PUT', path: `/api/graphs/${name}`, type: 'application/json', body: json(b) })),
    fc
      .tuple(
        fc.constantFrom('image/png', 'image/jpeg', 'image/webp'),
        fc.oneof(
          fc.constant(PNG_1x1),
          fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
        ),
      )
      .map(([type, body]) => ({
        method: 'POST',
        path: '/api/uploads',
        type,
        body,
      })),
    fc
      .tuple(fc.constantFrom('GET', 'DELETE'), fc.constantFrom('graphs', 'jobs'), pathSegment)
      .map(([method, what, name]) => ({ method, path: `/api/${what}/${name}` })),
    pathSegment.map((name) => ({ method: 'POST', path: `/api/jobs/${name}/cancel` })),
    fc
      .tuple(fc.constantFrom('uploads', 'results', 'builtin'), pathSegment)
      .map(([what, name]) => ({ method: 'GET', path: `/api/${what}/${name}${what === 'builtin' ? '.png' : ''}` })),
  );
  return call.map((c): RawRequest => {
    const headers: Record<string, string> = { host: `127.0.0.1:${port}`, 'x-requested-with': 'dualstyle' };
    if ('type' in c && c.type) headers['content-type'] = c.type;
    if ('body' in c && c.body) headers['content-length'] = String(c.body.length);
    return { method: c.method, path: c.path, headers, ...('body' in c && c.body ? { body: c.body } : {}) };
  });
}

export function request(port: number, types: readonly string[]) {
  return fc.oneof(hostile(port, types), wellFormed(port, types));
}

function hostile(port: number, types: readonly string[]) {
  const allowedHost = `127.0.0.1:${port}`;
  return fc
    .record({
      method: fc.oneof(
        { weight: 8, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE') },
        { weight: 1, arbitrary: fc.constantFrom('PATCH', 'HEAD', 'OPTIONS', 'PROPFIND') },
      ),
      route,
      query,
      contentType,
      requestedWith: fc.option(fc.constantFrom('dualstyle', 'XMLHttpRequest', ''), { freq: 3 }),
      host: fc.oneof(
        { weight: 10, arbitrary: fc.constant(allowedHost) },
        { weight: 1, arbitrary: fc.constantFrom('attacker.example', `localhost:${port}`, '[::1]', 'evil@127.0.0.1', '127.0.0.1.nip.io') },
      ),
      origin: fc.oneof(
        { weight: 6, arbitrary: fc.constant(null) },
        { weight: 1, arbitrary: fc.constantFrom(`http://${allowedHost}`, 'http://attacker.example', 'null', 'file://', 'http://localhost:5173', 'garbage') },
      ),
      encoding: fc.option(fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'x-unknown'), { freq: 12 }),
      body: body(types),
    })
    .map((r): RawRequest => {
      const headers: Record<string, string> = { host: r.host };
      if (r.contentType !== null) headers['content-type'] = r.contentType;
      if (r.requestedWith !== null) headers['x-requested-with'] = r.requestedWith;
      if (r.origin !== null) headers.origin = r.origin;
      if (r.encoding !== null) headers['content-encoding'] = r.encoding;
      const method = r.method;
      const withBody = r.body !== null && method !== 'GET' && method !== 'HEAD';
      if (withBody) headers['content-length'] = String(r.body!.length);
      return { method, path: r.route + r.query, headers, ...(withBody ? { body: r.body! } : {}) };
    });
}
