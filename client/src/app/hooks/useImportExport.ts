/**
 * Files in and out: graph JSON export, import of JSON or of a PNG downloaded from the studio (its
 * graph is embedded), and result PNGs downloaded with the graph of the run that made them.
 */
import { useEffect } from 'react';
import type { Graph } from '../../../../server/protocol/graph.ts';
import { setResultActions } from '../../editor/bridge.ts';
import { parseGraphJson } from '../../graph-io.ts';
import { graphJsonFromPng } from '../../png-graph.ts';
import { downloadBlob, downloadResultPng, fileStem } from '../downloads.ts';
import { gallery, type GalleryImage, type JobRecord } from '../gallery.ts';
import type { StudioDocument } from './useDocument.ts';
import { useStableCallback } from './useLatest.ts';
import type { Notify } from './useToasts.ts';

export function useImportExport(studioDoc: StudioDocument, notify: Notify) {
  const { currentGraph, docLabel, guardDirty, loadGraph } = studioDoc;

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
    setResultActions({ downloadPng: (nodeId, image) => downloadPng(nodeId, image) });
    return () => setResultActions(null);
  }, [downloadPng]);

  const downloadGalleryImage = useStableCallback((img: GalleryImage) => void gallery.jobOfImage(img).then((job) => downloadPng(img.nodeId, img, job)));

  const importText = (text: string, fileName: string) => {
    const parsed = parseGraphJson(text);
    if (!parsed.ok) {
      notify('error', `Cannot import ${fileName}: ${parsed.message}`);
      return;
    }
    const graph: Graph = parsed.graph;
    if (!graph.meta.title) graph.meta = { ...graph.meta, title: fileName.replace(/\.(json|png)$/i, '') };
    guardDirty(`Importing ${fileName}`, () => void loadGraph(graph, null, null).then(() => notify('info', `Imported ${fileName}. Save it to keep it on the server.`)));
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
      notify('error', `${file.name} is neither a .json graph file nor a PNG downloaded from the studio.`);
      return;
    }
    importText(await file.text(), file.name);
  });

  return { exportJson, importFile, downloadGalleryImage };
}
