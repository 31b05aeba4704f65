/**
 * Every migration, in order. A static list (not a directory scan) so the
 * compiled tree and any bundle carry exactly these. Names are date-prefixed and
 * sort in the order they must run.
 */
import type { Migration } from 'kysely';
import * as initial from './2026-11-22-0001-initial.js';
import * as imageFetchRequests from './2026-11-22-0002-image-fetch-requests.js';
import * as bmcs from './2026-12-04-0020-bmcs.js';
import * as labelIndexes from './2026-12-04-0021-label-indexes.js';
import * as provisioningJobs from './2026-12-04-0030-provisioning-jobs.js';
import * as idempotencyKeys from './2026-12-04-0031-idempotency-keys.js';
import * as events from './2026-12-04-0040-events.js';
import * as credentials from './2026-12-04-0050-credentials.js';
import * as jobImageToken from './2026-12-04-0070-job-image-token.js';
import * as jobEventTriggers from './2026-12-04-0080-job-event-triggers.js';
import * as revokedIdevids from './2026-12-04-0090-revoked-idevids.js';

/** Migration name -> migration. Append only; never edit a landed one. */
export const migrations: Readonly<Record<string, Migration>> = Object.freeze({
  '2026-11-22-0001-initial': initial,
  '2026-11-22-0002-image-fetch-requests': imageFetchRequests,
  '2026-12-04-0020-bmcs': bmcs,
  '2026-12-04-0021-label-indexes': labelIndexes,
  '2026-12-04-0030-provisioning-jobs': provisioningJobs,
  '2026-12-04-0031-idempotency-keys': idempotencyKeys,
  '2026-12-04-0040-events': events,
  '2026-12-04-0050-credentials': credentials,
  '2026-12-04-0070-job-image-token': jobImageToken,
  '2026-12-04-0080-job-event-triggers': jobEventTriggers,
  '2026-12-04-0090-revoked-idevids': revokedIdevids,
});
