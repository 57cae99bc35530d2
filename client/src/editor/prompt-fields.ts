/**
 * Which prompt fields of a graph show a token count, and what to count: a Text Prompt's text with its
 * subject filled in (as the node does), read as the Encode Text it feeds reads it (truncate or chunks),
 * with the tokenizer of the model that Encode Text is given. A prompt that feeds no Encode Text is
 * counted as truncated, with the demo's tokenizer, so a field never shows nothing while it is wired up.
 */
import type { Graph } from '../../../server/protocol/graph.ts';
import type { LongPromptMode } from '../../../server/protocol/prompt-tokens.ts';

export interface PromptField {
  nodeId: string;
  text: string;
  mode: LongPromptMode;
  /** The Load Model value of the model the prompt is encoded with. */
  model: string;
}

const DEMO_MODEL = 'demo';

/** The text a Text Prompt node outputs (nodes/text-prompt.ts: every "[prompt]" replaced by the subject, trimmed). */
export function promptText(params: Record<string, unknown>): string {
  const text = typeof params.text === 'string' ? params.text : '';
  const subject = typeof params.subject === 'string' ? params.subject : '';
  return text.replaceAll('[prompt]', subject).trim();
}

export function promptFields(graph: Pick<Graph, 'nodes' | 'edges'>): PromptField[] {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const sourceOf = (nodeId: string, input: string) => {
    const edge = graph.edges.find((e) => e.to.node === nodeId && e.to.input === input);
    return edge ? byId.get(edge.from.node) : undefined;
  };
  return graph.nodes
    .filter((n) => n.type === 'TextPrompt')
    .map((n) => {
      const encoder = graph.edges.map((e) => (e.from.node === n.id ? byId.get(e.to.node) : undefined)).find((t) => t?.type === 'EncodeText');
      const loader = encoder && sourceOf(encoder.id, 'model');
      const model = loader?.type === 'LoadModel' && typeof loader.params.model === 'string' && loader.params.model !== '' ? loader.params.model : DEMO_MODEL;
      const mode: LongPromptMode = encoder?.params.longPrompt === 'chunks' ? 'chunks' : 'truncate';
      return { nodeId: n.id, text: promptText(n.params), mode, model };
    });
}
