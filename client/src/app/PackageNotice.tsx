/**
 * The node packages (custom nodes) the studio could not load, said where the user sees it: the studio
 * started without them, and each one's reason (from the catalog) tells its author what to fix. It stays
 * until dismissed; a toast would be gone before anyone read it.
 */
import { useState } from 'react';
import type { Catalog } from '../../../server/protocol/catalog.ts';

export function PackageNotice({ catalog }: { catalog: Catalog }) {
  const [dismissed, setDismissed] = useState(false);
  const failed = (catalog.packages ?? []).filter((p) => p.error);
  if (dismissed || failed.length === 0) return null;
  return (
    <div className="sd-package-notice" role="alert" data-testid="package-notice">
      <strong>
        {failed.length === 1 ? 'A node package was' : `${failed.length} node packages were`} not loaded; the studio started without{' '}
        {failed.length === 1 ? 'it' : 'them'}:
      </strong>
      <ul>
        {failed.map((p, i) => (
          // Two folders may hold packages of one name: the position tells them apart.
          <li key={`${i}:${p.name}`}>
            <code>{p.name}</code>
            {p.version ? ` ${p.version}` : ''}: {p.error}
          </li>
        ))}
      </ul>
      <button type="button" onClick={() => setDismissed(true)}>
        Dismiss
      </button>
    </div>
  );
}
