/** The node catalog: every node type the server can run. Add a module here to ship a node. */
import type { AnyNodeDefinition } from './types.ts';

export const nodeDefinitions: AnyNodeDefinition[] = [];
