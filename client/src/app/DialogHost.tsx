/** Renders the open dialog, if any. */
import type { Catalog } from '../../../server/protocol/catalog.ts';
import { api, type GraphListEntry } from '../api.ts';
import { graphNameProblem } from '../graph-io.ts';
import type { Dialog } from './dialog-state.ts';
import { ConfirmDialog, OpenDialog, Palette, PromptDialog } from './dialogs.tsx';
import type { GalleryImage } from './gallery.ts';
import { CompareView } from './Gallery.tsx';
import { HelpDialog } from './HelpDialog.tsx';
import type { Position } from '../graph-io.ts';

export function DialogHost(props: {
  dialog: Dialog | null;
  catalog: Catalog;
  onClose(): void;
  onOpenEntry(entry: GraphListEntry): void;
  onAddNode(type: string, at?: Position): void;
  onSaveAs(name: string): void;
  onDownload(image: GalleryImage): void;
}) {
  const { dialog, onClose } = props;
  switch (dialog?.kind) {
    case 'open':
      return <OpenDialog load={api.listGraphs} onOpen={props.onOpenEntry} onDelete={(e) => api.deleteGraph(e.name).then(() => undefined)} onCancel={onClose} />;
    case 'palette':
      return <Palette nodes={props.catalog.nodes} onCancel={onClose} onPick={(type) => props.onAddNode(type, dialog.at)} />;
    case 'saveAs':
      return (
        <PromptDialog
          key={`${dialog.initial}|${dialog.error ?? ''}`}
          title="Save graph as"
          label="Name"
          initial={dialog.initial}
          confirmLabel="Save"
          validate={graphNameProblem}
          error={dialog.error}
          onSubmit={props.onSaveAs}
          onCancel={onClose}
        />
      );
    case 'compare':
      return <CompareView images={dialog.images} onDownload={props.onDownload} onClose={onClose} />;
    case 'help':
      return <HelpDialog onClose={onClose} />;
    case 'confirm':
      return (
        <ConfirmDialog
          title={dialog.title}
          message={dialog.message}
          confirmLabel={dialog.confirmLabel}
          danger
          onConfirm={dialog.onConfirm}
          onCancel={onClose}
        />
      );
    default:
      return null;
  }
}
