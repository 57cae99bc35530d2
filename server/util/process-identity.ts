/**
 * Which process is which, beyond its PID. A PID is reused once its process is gone, and a process
 * killed with SIGKILL stays a zombie (still answering `kill(pid, 0)`) until its parent reaps it, so
 * "is the process with this PID alive" cannot tell whether a job's runner still runs. A process's start
 * time (field 22 of /proc/<pid>/stat, in clock ticks since boot) can: a reused PID has another start
 * time, and a zombie's state is `Z`.
 *
 * Where /proc is missing (macOS), the start time is unknown and `processAlive` falls back to the PID.
 */
import { readFileSync } from 'node:fs';

interface ProcStat {
  state: string;
  startTicks: string;
}

function procStat(pid: number): ProcStat | null | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // No such process (or no /proc at all: undefined, so the caller falls back to the PID).
    return code === 'ENOENT' && procAvailable() ? null : undefined;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after its last ")".
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const startTicks = fields[19];
  return state && startTicks ? { state, startTicks } : undefined;
}

let procChecked: boolean | undefined;
function procAvailable(): boolean {
  if (procChecked === undefined) {
    try {
      readFileSync('/proc/self/stat');
      procChecked = true;
    } catch {
      procChecked = false;
    }
  }
  return procChecked;
}

/** The start time of process `pid` as a string ("" where it cannot be known: no /proc, or no such process). */
export function processStartTime(pid: number): string {
  return procStat(pid)?.startTicks ?? '';
}

/**
 * Whether the process that had `pid` and started at `startTime` (processStartTime, "" if unknown)
 * still runs: not when no process has that PID, when it is a zombie, or when it started at another time
 * (the PID was reused).
 */
export function processAlive(pid: number, startTime: string): boolean {
  const stat = procStat(pid);
  if (stat === null) return false;
  if (stat) return stat.state !== 'Z' && stat.state !== 'X' && (startTime === '' || stat.startTicks === startTime);
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
