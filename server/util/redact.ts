/** URLs for logs and messages: a password in a URL (redis://:secret@host) must not reach either. */
export function redacted(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
