/**
 * URLs for logs and messages: a password in a URL (redis://:secret@host) or a secret in its query
 * (the studio's `?token=`, an `access_token`, a `key`) must not reach either.
 */

/** Query parameters whose values are secrets. */
const SECRET_PARAM = /^(?:.*[-_])?(?:token|access_token|secret|password|passwd|key|api_key|apikey|auth|signature|sig)$/i;

/** A URL or a request target ("/api/x?token=..."), its secret query values replaced by "***". */
export function redactedQuery(target: string): string {
  return target.replace(/([?&;])([^=&;#]*)=([^&;#]*)/g, (whole, sep: string, name: string) => {
    let decoded = name;
    try {
      decoded = decodeURIComponent(name.replace(/\+/g, ' '));
    } catch {
      /* keep it as sent */
    }
    return SECRET_PARAM.test(decoded.trim()) ? `${sep}${name}=***` : whole;
  });
}

/** A URL with its password and secret query values replaced by "***". */
export function redacted(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return redactedQuery(u.toString());
  } catch {
    return redactedQuery(url);
  }
}
