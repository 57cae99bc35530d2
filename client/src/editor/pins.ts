/**
 * Reroute points: a connection is drawn through them (rete-connection-reroute-plugin keeps them, by
 * connection). Adding and removing one is an undo step; a point is added where the user
 * double-clicked, on the segment of the connection it lies on.
 */
import type { NodeEditor } from 'rete';
import type { AreaPlugin } from 'rete-area-plugin';
import type { ReroutePlugin } from 'rete-connection-reroute-plugin';
import type { HistoryPlugin } from 'rete-history-plugin';
import type { Position } from '../graph-io.ts';
import type { ChangeKind } from './schemes.ts';
import { FnAction, recordAction } from './param-history.ts';
import type { Schemes } from './schemes.ts';

export function createPins(c: {
  editor: NodeEditor<Schemes>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the area carries create-editor.tsx's extra signals; only its base API is used here
  area: AreaPlugin<Schemes, any>;
  history: HistoryPlugin<Schemes>;
  reroute: ReroutePlugin<Schemes>;
  changed(kind: ChangeKind): void;
}) {
  const { editor, area, history, reroute, changed } = c;

  function pinsOf(connectionId: string): Position[] {
    return reroute.pins.getPins(connectionId).map((p) => ({ ...p.position }));
  }

  function addPin(connectionId: string, at: Position): void {
    const view = area.connectionViews.get(connectionId);
    const path = view?.element.querySelector('path');
    if (!path) return;
    const ends = [path.getPointAtLength(0), path.getPointAtLength(path.getTotalLength())];
    const line = [ends[0], ...pinsOf(connectionId), ends[1]];
    // The segment where the point adds the least length is the one it was put on.
    let index = 0;
    let best = Infinity;
    for (let i = 1; i < line.length; i++) {
      const cost =
        Math.hypot(at.x - line[i - 1].x, at.y - line[i - 1].y) +
        Math.hypot(line[i].x - at.x, line[i].y - at.y) -
        Math.hypot(line[i].x - line[i - 1].x, line[i].y - line[i - 1].y);
      if (cost < best) [best, index] = [cost, i - 1];
    }
    const before = pinsOf(connectionId);
    const after = [...before.slice(0, index), at, ...before.slice(index)];
    recordAction(
      history,
      new FnAction(
        () => setPins(connectionId, before),
        () => setPins(connectionId, after),
      ),
    );
    setPins(connectionId, after);
  }

  function setPins(connectionId: string, points: Position[]): void {
    if (!editor.getConnection(connectionId)) return;
    for (const pin of reroute.pins.getPins(connectionId)) reroute.pins.remove(pin.id);
    for (const p of points) reroute.add(connectionId, { ...p });
    void area.update('connection', connectionId);
    changed('structure');
  }

  function removePin(pinId: string): void {
    const pin = reroute.pins.getPin(pinId);
    if (!pin) return;
    const before = pinsOf(pin.connectionId);
    const after = reroute.pins
      .getPins(pin.connectionId)
      .filter((p) => p.id !== pinId)
      .map((p) => ({ ...p.position }));
    recordAction(
      history,
      new FnAction(
        () => setPins(pin.connectionId, before),
        () => setPins(pin.connectionId, after),
      ),
    );
    setPins(pin.connectionId, after);
  }

  return { pinsOf, addPin, removePin, setPins };
}
