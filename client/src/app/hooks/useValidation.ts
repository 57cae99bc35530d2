/**
 * Live validation: the server checks the graph shortly after each edit; its issues go to the nodes
 * (through the graph's run-state store) and to the Problems panel. An answer about an older graph is dropped.
 */
import { useCallback, useEffect, useReducer, useRef } from 'react';
import type { Graph, ValidationIssue } from '../../../../server/protocol/graph.ts';
import { api, ApiError } from '../../api.ts';
import type { StudioEditor } from '../../editor/create-editor.tsx';
import type { NodeRuntimeStore } from '../../runtime.ts';
import { useStableCallback } from './useLatest.ts';

const VALIDATE_DEBOUNCE_MS = 300;

export interface ValidationState {
  issues: ValidationIssue[];
  /** Problems of nodes no output needs: a run leaves them out (shown, but they do not stop it). */
  warnings: ValidationIssue[];
  validating: boolean;
  error: string | null;
}

type Action =
  { type: 'checking' } | { type: 'issues'; issues: ValidationIssue[]; warnings: ValidationIssue[] } | { type: 'failed'; error: string } | { type: 'settled' };

function reducer(s: ValidationState, a: Action): ValidationState {
  switch (a.type) {
    case 'checking':
      return s.validating ? s : { ...s, validating: true };
    case 'issues':
      return { issues: a.issues, warnings: a.warnings, validating: false, error: null };
    case 'failed':
      return { ...s, validating: false, error: a.error };
    case 'settled':
      return s.validating ? { ...s, validating: false } : s;
  }
}

export interface Validation extends ValidationState {
  /** Checks now (the current graph unless one is given). */
  validateNow(graph?: Graph): Promise<void>;
  /** Checks after a short pause; a further edit restarts the pause. */
  schedule(): void;
  /**
   * Drops any pending or in-flight check (its answer would be about an older graph) and returns a
   * token for `report`: the caller is asking the server itself (a job submission checks the graph).
   */
  claim(): number;
  /** The caller's answer for its token: issues (or none) to show, or undefined when it had none; and the warnings. */
  report(token: number, issues: ValidationIssue[] | undefined, warnings?: ValidationIssue[]): void;
}

function byNodeId(list: ValidationIssue[]): Map<string, ValidationIssue[]> {
  const byNode = new Map<string, ValidationIssue[]>();
  for (const i of list) {
    if (!i.nodeId) continue;
    if (!byNode.has(i.nodeId)) byNode.set(i.nodeId, []);
    byNode.get(i.nodeId)!.push(i);
  }
  return byNode;
}

/** The checks of one graph tab: `runtime` is its nodes' store; an unspecified graph is the editor's as it is now. */
export function useValidation(editor: StudioEditor | null, runtime: NodeRuntimeStore): Validation {
  const [state, dispatch] = useReducer(reducer, { issues: [], warnings: [], validating: false, error: null });
  // Not state: which check is the newest, and the pending debounce.
  const seq = useRef(0);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(timer.current), []);

  const applyIssues = useStableCallback((list: ValidationIssue[], warnings: ValidationIssue[] = []) => {
    runtime.setIssues(byNodeId(list), editor?.snapshot().nodes.map((n) => n.id) ?? [], byNodeId(warnings));
    dispatch({ type: 'issues', issues: list, warnings });
  });

  const claim = useCallback(() => {
    clearTimeout(timer.current);
    return ++seq.current;
  }, []);

  const validateNow = useStableCallback(async (graph?: Graph) => {
    const target = graph ?? editor?.toGraph();
    if (!target) return;
    const token = claim();
    dispatch({ type: 'checking' });
    try {
      const res = await api.validate(target);
      if (token === seq.current) applyIssues(res.issues ?? [], res.warnings);
    } catch (err) {
      if (token !== seq.current) return;
      if (err instanceof ApiError && err.issues.length) applyIssues(err.issues);
      else dispatch({ type: 'failed', error: (err as Error).message });
    }
  });

  const schedule = useCallback(() => {
    claim();
    dispatch({ type: 'checking' });
    timer.current = setTimeout(() => void validateNow(), VALIDATE_DEBOUNCE_MS);
  }, [claim, validateNow]);

  const report = useStableCallback((token: number, issues: ValidationIssue[] | undefined, warnings?: ValidationIssue[]) => {
    if (token !== seq.current) return;
    if (issues) applyIssues(issues, warnings);
    else dispatch({ type: 'settled' });
  });

  return { ...state, validateNow, schedule, claim, report };
}
