/**
 * How node components reach their editor and the studio: the node environment. Rete's React plugin
 * renders every node in a React root of its own, so the app's React context never reaches a node by
 * itself; the editor wraps each node view in a provider of its own environment instead (see
 * create-editor.tsx). That keeps every open graph (a graph tab) apart: a node talks to the editor it
 * sits in and reads the run states of its own graph, never a module-level "current" one.
 */
import { createContext, useContext } from 'react';
import type { Health, ModelEntry } from '../api.ts';
import type { LongPromptMode, TokenCount } from '../../../server/protocol/prompt-tokens.ts';
import type { NodeRuntimeStore, Observable } from '../runtime.ts';

export interface EditorBridge {
  /** Sets a parameter as one undoable action; `coalesce` merges rapid edits of the same field. */
  setParam(nodeId: string, param: string, value: unknown, coalesce: boolean): void;
  /** Uploads an image file and stores its server name in the parameter. */
  uploadImage(nodeId: string, param: string, file: File): Promise<void>;
  /** Shows a parameter in simple mode, or hides it there, as one undoable action. */
  setExposed(nodeId: string, param: string, on: boolean): void;
  /** The parameters of a node that simple mode shows. */
  exposedOf(nodeId: string): readonly string[];
  /** Renames a node (empty: back to its type's title), as one undoable action. */
  setTitle(nodeId: string, title: string | undefined): void;
  /** A node's drawn size changed: what it now covers is moved out of its way. */
  nodeResized(nodeId: string): void;
}

/** An image uploaded in this session, by the name stored in the parameter (the server names uploads by content hash). */
export interface UploadedImage {
  url: string;
  width: number;
  height: number;
  /** The user's own file name, to show. */
  fileName: string;
}

/** What a result image on a node offers beyond showing itself; the app's, which knows the jobs. */
export interface ResultActions {
  /** Downloads the image as a PNG that carries the graph of the run that made it. */
  downloadPng(nodeId: string, image: { url: string; name: string }): void;
}

/** Studio-wide state that nodes read: one per studio, shared by its graph tabs. */
export interface SharedNodeState {
  health: Observable<Health | null>;
  /** Models the server offers (GET /api/models); the demo entry says it has random weights. */
  models: Observable<ModelEntry[]>;
  uploads: Observable<Record<string, UploadedImage>>;
  resultActions: Observable<ResultActions | null>;
}

/** Everything a node view of one graph reaches. */
export interface NodeEnv {
  bridge: EditorBridge;
  /** The run states of this graph's nodes. */
  runtime: NodeRuntimeStore;
  /** The token count under each prompt field of this graph (kept by useTokenCounts). */
  tokenCounts: Observable<TokenCounts>;
  shared: SharedNodeState;
}

export const NodeEnvContext = createContext<NodeEnv | null>(null);

/** The environment of the node being drawn; a node view outside an editor is a programming error. */
export function useNodeEnv(): NodeEnv {
  const env = useContext(NodeEnvContext);
  if (!env) throw new Error('a node view was drawn outside an editor (no node environment)');
  return env;
}

/** Adds an upload to the ones known by name. */
export function rememberUpload(uploads: Observable<Record<string, UploadedImage>>, name: string, image: UploadedImage): void {
  uploads.set({ ...uploads.get(), [name]: image });
}

/** The token count under each prompt field, by Text Prompt node id. */
export type TokenCounts = Record<string, { count: TokenCount; mode: LongPromptMode }>;
