/** Which modal dialog is open; one at a time. */
import type { Position } from '../graph-io.ts';
import type { GalleryImage } from './gallery.ts';

export type Dialog =
  | { kind: 'open' }
  | { kind: 'palette'; at?: Position }
  | { kind: 'saveAs'; initial: string; error?: string | null }
  | { kind: 'confirm'; title: string; message: string; confirmLabel: string; onConfirm: () => void }
  | { kind: 'compare'; images: GalleryImage[] }
  | { kind: 'help' };

export type SetDialog = (dialog: Dialog | null) => void;
