/** Where Load Model may read models now lives below the nodes (server/models/model-roots.ts); node modules import it from here. */
export * from '../../server/models/model-roots.ts';
