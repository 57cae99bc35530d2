/** What the fault run's rounds share (fault-rounds.ts): the tally, a round's context, seeded draws. */

export type FaultKind = 'kill' | 'disk-full' | 'socket-flood' | 'redis';
export const FAULT_KINDS: readonly FaultKind[] = ['kill', 'disk-full', 'socket-flood', 'redis'];

export interface FaultTally {
  rounds: number;
  jobs: number;
  lost: number;
  duplicated: number;
  corrupt: number;
  /** Anything else wrong (a 500, a server that stopped answering, the token in the log). */
  other: number;
  /** One line per finding of any kind. */
  problems: string[];
}

/** Counts a finding and keeps its line. */
export function flag(tally: FaultTally, kind: 'lost' | 'duplicated' | 'corrupt' | 'other', line: string, count = 1): void {
  tally[kind] += count;
  tally.problems.push(line);
}

export interface Round {
  n: number;
  rng: () => number;
  tally: FaultTally;
  say(line: string): void;
}

/** A seeded generator (mulberry32): the same seed injects the same faults at the same points. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A whole number in [0, n). */
export const pick = (rng: () => number, n: number) => Math.floor(rng() * n);
