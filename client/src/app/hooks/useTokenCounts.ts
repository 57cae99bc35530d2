/**
 * Keeps the token count under each prompt field (a graph's NodeEnv.tokenCounts) up to date: after each pause in
 * editing, the graph's prompt fields (editor/prompt-fields.ts) are counted by POST /api/tokens, one request
 * per model, with the tokenizer of the model each prompt is encoded with. An answer that arrives after a
 * newer edit is dropped; a failed count leaves the field without a line rather than with a wrong one.
 */
import { useCallback, useEffect, useRef } from 'react';
import type { Graph } from '../../../../server/protocol/graph.ts';
import { api } from '../../api.ts';
import type { TokenCounts } from '../../editor/bridge.ts';
import type { StudioEditor } from '../../editor/create-editor.tsx';
import type { Observable } from '../../runtime.ts';
import { promptFields } from '../../editor/prompt-fields.ts';

/** The pause in typing after which the counts are asked for. */
export const TOKEN_COUNT_DEBOUNCE_MS = 250;

export async function countPrompts(graph: Graph): Promise<TokenCounts> {
  const fields = promptFields(graph);
  const models = [...new Set(fields.map((f) => f.model))];
  const next: TokenCounts = {};
  await Promise.all(
    models.map(async (model) => {
      const mine = fields.filter((f) => f.model === model);
      const { counts } = await api
        .tokens(
          mine.map((f) => f.text),
          model,
        )
        .catch(() => ({ counts: [] }));
      mine.forEach((f, i) => {
        const count = counts[i];
        if (count) next[f.nodeId] = { count, mode: f.mode };
      });
    }),
  );
  return next;
}

/** Returns `schedule`: call it after an edit (params or structure) or a load of the editor's graph. */
export function useTokenCounts(editor: StudioEditor | null, tokenCounts: Observable<TokenCounts>): () => void {
  const seq = useRef(0);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(timer.current), []);
  return useCallback(() => {
    clearTimeout(timer.current);
    const token = ++seq.current;
    if (!editor) return;
    timer.current = setTimeout(() => {
      void countPrompts(editor.toGraph()).then((next) => {
        if (token === seq.current) tokenCounts.set(next);
      });
    }, TOKEN_COUNT_DEBOUNCE_MS);
  }, [editor, tokenCounts]);
}
