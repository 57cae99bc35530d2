/**
 * The access token of a studio that listens beyond loopback. The user opens the editor as
 * `http://host:8188/?token=…`; we keep the token in sessionStorage (this tab only, gone when it
 * closes) and take it out of the address bar, so it does not end up in screenshots, bookmarks or
 * shared links, while a reload still works.
 *
 * The server accepts it as `Authorization: Bearer` (fetch), `?token=` (img src and download links,
 * which cannot carry headers) and socket.io `auth: { token }`.
 */
const KEY = 'dualstyle.token';

function readToken(): string | null {
  if (typeof window === 'undefined') return null;
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl) {
    try {
      sessionStorage.setItem(KEY, fromUrl);
      url.searchParams.delete('token');
      window.history.replaceState(window.history.state, '', url.pathname + url.search + url.hash);
    } catch {
      // Storage disabled: the token still works for this page load, and stays in the address.
    }
    return fromUrl;
  }
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

const token = readToken();

export function accessToken(): string | null {
  return token;
}

/** Headers for fetch calls to the studio API. */
export function authHeaders(): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/**
 * A same-origin URL with `?token=` added, for elements that cannot send headers (<img>, download
 * links). Other origins, blob: and data: URLs are left alone: the token is for this server only.
 */
export function withToken(url: string): string {
  if (!token || /^(blob|data):/i.test(url)) return url;
  const u = new URL(url, window.location.href);
  if (u.origin !== window.location.origin) return url;
  u.searchParams.set('token', token);
  return u.pathname + u.search + u.hash;
}
