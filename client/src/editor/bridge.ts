/**
 * How node components (each in its own React root) reach the editor and app-wide state: a
 * module-level bridge set by the editor when it starts, plus small observables.
 */
import { Observable } from '../runtime.ts';
import type { Health, ModelEntry } from '../api.ts';
import type { LongPromptMode, TokenCount } from '../../../server/protocol/prompt-tokens.ts';

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

let current: EditorBridge | null = null;

export function setBridge(bridge: EditorBridge | null): void {
  current = bridge;
}

/** The bridge, or null before the editor exists (a node measured while it is being built). */
export function currentBridge(): EditorBridge | null {
  return current;
}

export function bridge(): EditorBridge {
  if (!current) throw new Error('the editor is not ready yet');
  return current;
}

export const healthState = new Observable<Health | null>(null);

/**
 * Images uploaded in this session, by the name stored in the parameter (the server names uploads
 * by content hash, so the user's own file name is kept here to show).
 */
export const uploadedImages = new Observable<Record<string, { url: string; width: number; height: number; fileName: string }>>({});

/** Models the server offers (GET /api/models); the demo entry says it has random weights. */
export const modelsState = new Observable<ModelEntry[]>([]);

/** What a result image on a node offers beyond showing itself; set by the app, which knows the jobs. */
export interface ResultActions {
  /** Downloads the image as a PNG that carries the graph of the run that made it. */
  downloadPng(nodeId: string, image: { url: string; name: string }): void;
}

let resultActions: ResultActions | null = null;

export function setResultActions(actions: ResultActions | null): void {
  resultActions = actions;
}

export function currentResultActions(): ResultActions | null {
  return resultActions;
}

/** The token count under each prompt field, by Text Prompt node id (kept by useTokenCounts). */
export type TokenCounts = Record<string, { count: TokenCount; mode: LongPromptMode }>;
export const tokenCounts = new Observable<TokenCounts>({});
