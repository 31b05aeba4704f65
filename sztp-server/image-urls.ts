/**
 * The URLs and hashes the image service hands out: in conveyed information
 * (RFC 8572 `boot-image` `download-uri` and `image-verification`), to BMCs
 * (virtual media, SimpleUpdate) and in the operator API.
 *
 * URLs are short and end in the image's own name (`/images/ubuntu-24.04.iso`):
 * some BMCs refuse long URLs, query strings, or an ISO URL that does not end
 * in `.iso`. Each listener has an advertised base URL; without one the base is
 * the address the request came in on (its Host name, else the socket's local
 * address) plus that listener's port, since the service usually binds 0.0.0.0
 * behind addresses that BMCs and devices reach differently.
 */

/** Base URLs (scheme://host:port[/prefix], no trailing slash) of the two listeners that serve images. */
export interface ImageBaseUrls {
  /** The device TLS listener (:8443). */
  https: string;
  /** The plain-HTTP images listener (:8081). */
  http: string;
}

/** How a request reached the service: its Host header and the socket's local address. */
export interface RequestOrigin {
  /** The Host header as sent (port, if any, is dropped: each listener has its own). */
  host?: string | undefined;
  /** The socket's local address (`req.socket.localAddress`). */
  localAddress?: string | undefined;
}

/** Resolves the base URLs for one request. */
export type ImageBaseResolver = (origin: RequestOrigin) => ImageBaseUrls;

/** Where each listener is advertised or, failing that, which port it listens on. */
export interface ImageBaseOptions {
  /** Advertised base of the images HTTP listener (e.g. `http://10.0.0.5:8081`). */
  httpAdvertise?: string | undefined;
  /** Advertised base of the device HTTPS listener (e.g. `https://ztp.lab.example:8443`). */
  httpsAdvertise?: string | undefined;
  /** The listeners' actual ports (read per request: ports may be ephemeral until listening). */
  ports(): { http: number; https: number };
}

/** Formats a socket's local address as a URL host: IPv4-mapped IPv6 unwrapped, IPv6 bracketed. */
export function urlHost(address: string | undefined): string {
  if (!address) return '127.0.0.1';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1] as string;
  if (address.includes(':')) return `[${address.replace('%', '%25')}]`;
  return address;
}

/** The host part of a Host header when it is a plain DNS name, IPv4 or bracketed IPv6 literal. */
function hostHeaderName(host: string | undefined): string | undefined {
  if (!host) return undefined;
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))(?::\d{1,5})?$/.exec(host.trim());
  return m?.[1];
}

/**
 * Builds a resolver of base URLs: the advertised one where set; else the name
 * the client used (its Host header, so an HTTPS URL matches the name the
 * server certificate was checked against), else the local address the request
 * came in on; with each listener's own port.
 */
export function imageBaseResolver(opts: ImageBaseOptions): ImageBaseResolver {
  const trim = (u: string) => u.replace(/\/+$/, '');
  return (origin) => {
    const host = hostHeaderName(origin.host) ?? urlHost(origin.localAddress);
    const ports = opts.ports();
    return {
      https: opts.httpsAdvertise ? trim(opts.httpsAdvertise) : `https://${host}:${ports.https}`,
      http: opts.httpAdvertise ? trim(opts.httpAdvertise) : `http://${host}:${ports.http}`,
    };
  };
}

/**
 * The URL of one image under a base URL: `<base>/images/<name>`, or with a provisioning run's image
 * token `<base>/images/t/<token>/<name>` (still ending in the image's name; the token only ties the
 * reads to the run's trace).
 */
export function imageUrl(base: string, name: string, token?: string): string {
  return token
    ? `${base}/images/t/${encodeURIComponent(token)}/${encodeURIComponent(name)}`
    : `${base}/images/${encodeURIComponent(name)}`;
}

/**
 * The `download-uri` leaf-list of an RFC 8572 boot-image: HTTPS first (the
 * device listener, authenticated server), then plain HTTP for clients that
 * cannot trust the private CA. RFC 8572 §2.2: the device tries them in order.
 */
export function imageDownloadUris(image: { name: string }, bases: Partial<ImageBaseUrls>): string[] {
  const out: string[] = [];
  if (bases.https) out.push(imageUrl(bases.https, image.name));
  if (bases.http) out.push(imageUrl(bases.http, image.name));
  return out;
}

function colonHex(hex: string): string {
  return (hex.toLowerCase().match(/../g) ?? []).join(':');
}

/** One entry of the RFC 8572 `image-verification` list, in its YANG JSON encoding. */
export interface ImageVerification {
  'hash-algorithm': 'ietf-sztp-conveyed-info:sha-256';
  'hash-value': string;
}

/**
 * The `image-verification` list of an RFC 8572 boot-image: the SHA-256 of the
 * image (the only hash identity `ietf-sztp-conveyed-info` defines) as
 * colon-separated lowercase hex.
 */
export function imageVerification(image: { sha256: string }): ImageVerification[] {
  return [{ 'hash-algorithm': 'ietf-sztp-conveyed-info:sha-256', 'hash-value': colonHex(image.sha256) }];
}

/** An image as conveyed information needs it (the shape of conveyed-builder's `ResolvedImage`). */
export interface ConveyedImage {
  /** HTTPS first, then HTTP. */
  downloadUris: string[];
  /** Lowercase hex SHA-256. */
  sha256: string;
}

/**
 * Adapts the image catalog to the bootstrap service's `resolveImage(name, base)`:
 * the named image's download URIs under `base` and its SHA-256, or undefined
 * when the image service does not hold it.
 */
export function conveyedImageResolver(catalog: {
  get(name: string): Promise<{ name: string; sha256: string } | undefined>;
}): (name: string, base: Partial<ImageBaseUrls>) => Promise<ConveyedImage | undefined> {
  return async (name, base) => {
    const image = await catalog.get(name);
    return image && { downloadUris: imageDownloadUris(image, base), sha256: image.sha256 };
  };
}
