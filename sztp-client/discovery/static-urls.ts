/**
 * Statically configured bootstrap servers (`--bootstrap-url`, repeatable): the
 * "list of bootstrap servers" a device may be preconfigured with (RFC 8572 §5.1,
 * Figure 1). They are the operator's own configuration, so a bad one is an
 * error, not a warning.
 */
import { DiscoveryError } from './errors.js';
import { checkHttpsUrl } from './server-uri.js';

/**
 * Validates and normalises static URLs (https only; a path is allowed).
 *
 * @throws DiscoveryError `SZTP_CLIENT_ERR_INVALID_STATIC_URL`
 */
export function parseStaticUrls(urls: readonly string[]): string[] {
  return urls.map((u) => {
    const check = checkHttpsUrl(u.trim());
    if (!check.ok)
      throw new DiscoveryError(
        'SZTP_CLIENT_ERR_INVALID_STATIC_URL',
        `bad bootstrap URL ${JSON.stringify(u)}: ${check.reason}`,
        {
          source: u,
        },
      );
    return check.uri;
  });
}
