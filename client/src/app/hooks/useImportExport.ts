/**
 * Files in and out: graph JSON export, import of JSON or of a PNG downloaded from the studio (its
 * graph is embedded; it opens in a tab of its own unless this one holds nothing of the user's), and
 * result PNGs downloaded with the graph of the run that made them.
 */
import { useEffect } from 'react';
import type { Catalog } from '../../../../server/protocol/catalog.ts';
import type { Graph } from '../../../../server/protocol/graph.ts';
import { api } from '../../api.ts';
import { rememberUpload } from '../../editor/bridge.ts';
import type { StudioEditor } from '../../editor/create-editor.tsx';
import { isUploadableImage } from '../../editor/ParamField.tsx';
import { parseGraphJson, type Position } from '../../graph-io.ts';
import { graphJsonFromPng } from '../../png-graph.ts';
import { downloadBlob, downloadResultPng, fileStem } from '../downloads.ts';
import type { GalleryImage, JobRecord } from '../gallery.ts';
import { useStudio } from '../studio-store.ts';
import type { StudioDocument } from './useDocument.ts';
import { useStableCallback } from './useLatest.ts';
import type { Notify } from './useToasts.ts';

/** Files of one graph tab; `active`: the tab shown, whose nodes' result images download through it. */
export function useImportExport(studioDoc: StudioDocument, notify: Notify, editor: StudioEditor | null, catalog: Catalog, active: boolean) {
  const { currentGraph, docLabel, openGraph } = studioDoc;
  const { gallery, resultActions, uploads } = useStudio();

  const exportJson = useStableCallback(() => {
    const graph = currentGraph();
    const name = fileStem(studioDoc.doc.name ?? (studioDoc.meta.title as string | undefined) ?? 'graph');
    downloadBlob(new Blob([JSON.stringify(graph, null, 2)], { type: 'application/json' }), `${name}.json`);
  });

  /** A result as PNG with the graph of the run that made it (from the server's history; else the current graph). */
  const downloadPng = useStableCallback((nodeId: string, image: { url: string; name: string }, known?: JobRecord) => {
    const fallback = { graph: currentGraph(), graphLabel: docLabel };
    (async () => {
      const job = known ?? (await gallery.jobOf(image.url)) ?? fallback;
      await downloadResultPng(image, nodeId, job.graph, job.graphLabel);
    })().catch((err: Error) => notify('error', `Cannot download ${image.name}: ${err.message}`));
  });
  // Result images on the nodes download through this (node components cannot take props from here).
  useEffect(() => {
    if (!active) return;
    resultActions.set({ downloadPng: (nodeId, image) => downloadPng(nodeId, image) });
    return () => resultActions.set(null);
  }, [active, resultActions, downloadPng]);

  const downloadGalleryImage = useStableCallback((img: GalleryImage) => void gallery.jobOfImage(img).then((job) => downloadPng(img.nodeId, img, job)));

  const importText = (text: string, fileName: string) => {
    const parsed = parseGraphJson(text);
    if (!parsed.ok) {
      notify('error', `Cannot import ${fileName}: ${parsed.message}`);
      return;
    }
    const graph: Graph = parsed.graph;
    if (!graph.meta.title) graph.meta = { ...graph.meta, title: fileName.replace(/\.(json|png)$/i, '') };
    void openGraph({ graph, name: null, source: null }).then(() => notify('info', `Imported ${fileName}. Save it to keep it on the server.`));
  };

  const importFile = useStableCallback(async (file: File) => {
    if (/\.png$/i.test(file.name) || file.type === 'image/png') {
      // A PNG downloaded from the studio carries its graph in a text chunk.
      const read = await graphJsonFromPng(new Uint8Array(await file.arrayBuffer()));
      if (read.ok) importText(read.json, file.name);
      else notify('error', `Cannot open ${file.name}: ${read.message}.`);
      return;
    }
    if (!/\.json$/i.test(file.name) && file.type !== 'application/json') {
      notify('error', `${file.name} is neither a .json graph file nor a picture (PNG, JPEG, WebP).`);
      return;
    }
    importText(await file.text(), file.name);
  });

  /** A picture dropped on the canvas: uploaded, in a new Load Image node where it was dropped. */
  const imageNode = async (file: File, at: Position) => {
    const type = catalog.nodes.find((n) => n.params.some((p) => p.kind === 'image'));
    const param = type?.params.find((p) => p.kind === 'image');
    if (!editor || !type || !param) {
      notify('error', 'This server has no node that loads an image.');
      return;
    }
    try {
      const res = await api.upload(file);
      rememberUpload(uploads, res.name, { url: res.url, width: res.width, height: res.height, fileName: res.fileName ?? file.name });
      await editor.addNode(type.type, at, { [param.name]: res.name });
      notify('info', `${file.name} is in a new ${type.title} node: connect its image where you want it.`);
    } catch (err) {
      notify('error', `Cannot load ${file.name}: ${(err as Error).message}`);
    }
  };

  /** A file dropped on the canvas at a screen point: a graph opens, a picture becomes a Load Image node. */
  const dropFile = useStableCallback(async (file: File, client: Position) => {
    const at = editor?.graphPoint(client) ?? { x: 0, y: 0 };
    if (/\.png$/i.test(file.name) || file.type === 'image/png') {
      const read = await graphJsonFromPng(new Uint8Array(await file.arrayBuffer()));
      if (read.ok) importText(read.json, file.name);
      else if (read.reason === 'no-graph') await imageNode(file, at);
      else notify('error', `Cannot open ${file.name}: ${read.message}.`);
      return;
    }
    if (isUploadableImage(file)) await imageNode(file, at);
    else await importFile(file);
  });

  return { exportJson, importFile, dropFile, downloadGalleryImage };
}
