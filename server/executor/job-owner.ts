/**
 * Who runs an embedded job, as recorded in the job store: host, PID, the process's start time and the
 * service's random instance id. A PID alone would keep a job "running" for ever once the PID is reused,
 * or while the killed server is an unreaped zombie (util/process-identity.ts); the start time tells.
 */
import os from 'node:os';
import { processAlive, processStartTime } from '../util/process-identity.ts';

/** Services open in this process, by instance id: their running jobs are not orphans. */
const liveInstances = new Set<string>();

/** Who runs a job: `host:pid:start:instance` (start: the process's start time, "" where unknown). */
export function ownerId(pid: number, instance: string): string {
  return `${os.hostname()}:${pid}:${processStartTime(pid)}:${instance}`;
}

/**
 * Whether a running job's runner is gone: its process has exited (or is a zombie, or its PID now
 * belongs to a process started at another time), or it is this process and the service that ran it
 * was closed. (Two servers on one data folder each run their own jobs.) Owners written before the
 * start time was recorded (`host:pid:instance`) are judged by the PID alone.
 */
export function isOrphaned(owner: string | null): boolean {
  const m = owner ? /^(.*?):(\d+):(?:(\d*):)?([\w-]+)$/.exec(owner) : null;
  if (!m) return true;
  const [, host, pidText, start, instance] = m;
  if (host !== os.hostname()) return true;
  const pid = Number(pidText);
  if (pid === process.pid) return !liveInstances.has(instance!);
  return !processAlive(pid, start ?? '');
}

/** A service of this process opened (its running jobs are not orphans) or closed. */
export function serviceOpened(instance: string): void {
  liveInstances.add(instance);
}

export function serviceClosed(instance: string): void {
  liveInstances.delete(instance);
}
