/**
 * The `progress-type` enumeration of `ietf-sztp-bootstrap-server@2019-04-30`
 * (RFC 8572 §7.3), in YANG order. Both sides speak it: the server stores and
 * acts on reports, the agent sends them — so it lives here, where both may
 * import it (DESIGN.md: the agent never imports server code).
 */
export const PROGRESS_TYPES = [
  'bootstrap-initiated',
  'parsing-initiated',
  'parsing-warning',
  'parsing-error',
  'parsing-complete',
  'boot-image-initiated',
  'boot-image-warning',
  'boot-image-error',
  'boot-image-mismatch',
  'boot-image-installed-rebooting',
  'boot-image-complete',
  'pre-script-initiated',
  'pre-script-warning',
  'pre-script-error',
  'pre-script-complete',
  'config-initiated',
  'config-warning',
  'config-error',
  'config-complete',
  'post-script-initiated',
  'post-script-warning',
  'post-script-error',
  'post-script-complete',
  'bootstrap-warning',
  'bootstrap-error',
  'bootstrap-complete',
  'informational',
] as const;

/** One `progress-type`. */
export type ProgressType = (typeof PROGRESS_TYPES)[number];
