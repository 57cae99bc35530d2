/** The shortcut sheet (press ?). */
import { Modal } from './dialogs.tsx';

export const SHORTCUTS: [string, string][] = [
  ['Ctrl+Enter', 'Run: queue the graph'],
  ['Ctrl+Shift+Enter', 'Queue it first in line'],
  ['Esc', 'Cancel the job shown in the toolbar; close a menu or dialog'],
  ['Double-click canvas / right-click', 'Add a node (search by name, type or what it does)'],
  ['Ctrl+C / Ctrl+V', 'Copy / paste nodes (also into another tab)'],
  ['Ctrl+Shift+V', 'Paste, keeping connections from nodes that were not copied'],
  ['Ctrl+D', 'Duplicate the selected nodes'],
  ['Ctrl+B', 'Bypass the selected nodes (their input passes through)'],
  ['Ctrl+M', 'Mute the selected nodes (they, and what needs them, do not run)'],
  ['Ctrl+G', 'Put a titled frame around the selected nodes'],
  ['Double-click a connection', 'Add a reroute point (drag it; right-click removes it)'],
  ['Double-click a title', 'Rename a node or a frame'],
  ['Delete / Backspace', 'Delete the selected nodes'],
  ['Ctrl+click', 'Select several nodes'],
  ['Ctrl+A', 'Select every node'],
  ['Ctrl+Z / Ctrl+Shift+Z, Ctrl+Y', 'Undo / redo'],
  ['Ctrl+S / Ctrl+O', 'Save / open'],
  ['F / Ctrl+Shift+A', 'Fit the graph in view / arrange it'],
  ['Drop an image', 'A Load Image node with that picture (a studio PNG opens its graph)'],
  ['?', 'This sheet'],
];

export function HelpDialog({ onClose }: { onClose: () => void }) {
  return (
    <Modal title="Keyboard shortcuts" onClose={onClose} testId="help" wide>
      <table className="sd-shortcuts">
        <tbody>
          {SHORTCUTS.map(([keys, what]) => (
            <tr key={keys}>
              <td>
                <kbd>{keys}</kbd>
              </td>
              <td>{what}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="sd-actions">
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
    </Modal>
  );
}
