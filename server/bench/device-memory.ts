/**
 * Peak GPU memory of this process, sampled from nvidia-smi while the bench runs (onnxruntime-node does
 * not expose the CUDA allocator's statistics). Sampling every 250 ms can miss a short peak; the arena
 * keeps what it grew to, so the figure it misses is the transient workspace of one call at most.
 */
import { spawn } from 'node:child_process';

export interface DeviceMemorySampler {
  /** Peak MiB seen for this process, or null when nvidia-smi gave nothing. */
  stop(): Promise<number | null>;
}

function sample(pid: number): Promise<number | null> {
  return new Promise((resolve) => {
    const p = spawn('nvidia-smi', ['--query-compute-apps=pid,used_memory', '--format=csv,noheader,nounits']);
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', () => resolve(null));
    p.on('close', () => {
      const row = out
        .split('\n')
        .map((l) => l.split(',').map((s) => s.trim()))
        .find((r) => Number(r[0]) === pid);
      resolve(row ? Number(row[1]) : null);
    });
  });
}

export function sampleDeviceMemory(intervalMs = 250): DeviceMemorySampler {
  let peak: number | null = null;
  let running = true;
  const loop = (async () => {
    while (running) {
      const v = await sample(process.pid);
      if (v !== null) peak = Math.max(peak ?? 0, v);
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peak;
    },
  };
}
