/**
 * Builds conveyed information (RFC 8572 §2.2, module ietf-sztp-conveyed-info)
 * from an operator profile. Configuration and scripts are text in the profile
 * and base64 binary on the wire.
 */
import {
  type ConveyedInformation,
  ONBOARDING_KEY,
  type OnboardingInformation,
  REDIRECT_KEY,
} from '../pki/index.js';
import type { ProfileSpec } from '../db/index.js';

/** The profile spec: one schema, owned by `db/profile-spec.ts` (both sides read it). */
export type { ProfileSpec } from '../db/index.js';

/** Where a boot image can be fetched from and its SHA-256, from the image service. */
export interface ResolvedImage {
  /** HTTPS first, then HTTP (RFC 8572 §5.6: the device tries them in order). */
  downloadUris: string[];
  /** SHA-256 of the image, lowercase hex without separators. */
  sha256: string;
}

/** Turns a trust anchor given as PEM certificates into the degenerate SignedData RFC 8572 wants (base64). */
export type TrustAnchorEncoder = (pemOrBase64: string) => string;

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

/** Formats a hex digest as `yang:hex-string` (colon-separated, lowercase — what the OPI agent compares to). */
export function colonHex(hex: string): string {
  return (hex.toLowerCase().match(/../g) ?? []).join(':');
}

/**
 * Builds the conveyed information. `opiCompatible` leaves out `os-name` and
 * `os-version`, which the OPI sztp-agent's strict JSON decoding refuses.
 */
export function buildConveyedInformation(
  spec: ProfileSpec,
  image: ResolvedImage | undefined,
  encodeTrustAnchor: TrustAnchorEncoder,
  opiCompatible = false,
): ConveyedInformation {
  if (spec.type === 'redirect') {
    return {
      [REDIRECT_KEY]: {
        'bootstrap-server': (spec.bootstrapServers ?? []).map((s) => ({
          address: s.address,
          ...(s.port !== undefined ? { port: s.port } : {}),
          ...(s.trustAnchor !== undefined ? { 'trust-anchor': encodeTrustAnchor(s.trustAnchor) } : {}),
        })),
      },
    };
  }
  const info: OnboardingInformation = {};
  if (spec.bootImage && image) {
    info['boot-image'] = {
      ...(opiCompatible ? {} : { 'os-name': spec.bootImage.osName, 'os-version': spec.bootImage.osVersion }),
      'download-uri': image.downloadUris,
      'image-verification': [
        { 'hash-algorithm': 'ietf-sztp-conveyed-info:sha-256', 'hash-value': colonHex(image.sha256) },
      ],
    };
  }
  if (spec.configurationHandling) info['configuration-handling'] = spec.configurationHandling;
  if (spec.preConfigurationScript !== undefined)
    info['pre-configuration-script'] = b64(spec.preConfigurationScript);
  if (spec.configuration !== undefined) info.configuration = b64(spec.configuration);
  if (spec.postConfigurationScript !== undefined)
    info['post-configuration-script'] = b64(spec.postConfigurationScript);
  return { [ONBOARDING_KEY]: info };
}
