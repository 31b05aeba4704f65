/**
 * The append-only log of device requests (`bootstrap_events`): records are
 * queued and written in batches off the request path; identical requests in
 * one batch (a retry storm) are stored once with `repeats: n`.
 */
import { type Insertable, type Kysely, sql } from 'kysely';
import type { Database } from '../db/index.js';
import type { DeviceIdentity, RequestCredentials } from './device-auth.js';
import { WriteBehind } from './write-behind.js';

type EventRow = Insertable<Database['bootstrap_events']>;

/** How a device authenticated, as logged: certificate subject + fingerprint, or `basic:<serial>`. */
export function tlsIdentity(id: DeviceIdentity | undefined): string | null {
  if (id?.certificate) return `${id.certificate.subject} (sha256 ${id.certificate.fingerprintSha256})`;
  return id ? `basic:${id.serial}` : null;
}

/** Batches request records into `bootstrap_events`. */
export class RequestLog {
  readonly #events: WriteBehind<EventRow>;

  constructor(db: Kysely<Database>, onWriteError?: (err: unknown, rows: number) => void) {
    this.#events = new WriteBehind<EventRow>(
      async (batch) => {
        const col = <T>(f: (r: EventRow, repeats: number) => T) =>
          batch.map(({ item, repeats }) => f(item, repeats));
        // One statement with array parameters per batch (as image fetches): binding stays
        // constant per batch rather than growing with rows × columns on embedded PGlite.
        await sql`insert into bootstrap_events (serial, kind, remote_address, tls_identity, detail)
          select * from unnest(${col((r) => r.serial)}::text[], ${col((r) => r.kind)}::text[],
            ${col((r) => r.remote_address ?? null)}::text[], ${col((r) => r.tls_identity ?? null)}::text[],
            ${col((r, repeats) => (repeats > 1 ? JSON.stringify({ ...JSON.parse(String(r.detail)), repeats }) : r.detail))}::jsonb[])`.execute(
          db,
        );
      },
      {
        name: 'bootstrap_events',
        // Identical requests within a second (a retry storm) share one row.
        flushMs: 1000,
        ...(onWriteError ? { onDrop: (n, err) => onWriteError(err, n) } : {}),
      },
    );
  }

  /** Queues a request record. */
  record(
    serial: string,
    kind: string,
    cred: RequestCredentials,
    id: DeviceIdentity | undefined,
    detail: Record<string, unknown>,
  ): void {
    const row = {
      serial,
      kind,
      remote_address: cred.remoteAddress ?? null,
      tls_identity: tlsIdentity(id),
      detail: JSON.stringify(detail),
    };
    // Identical requests (same device, address, identity and outcome) in one batch become one row.
    this.#events.add(row, `${serial}\0${kind}\0${row.remote_address}\0${row.tls_identity}\0${row.detail}`);
  }

  /** Writes queued records now. */
  flush(): Promise<void> {
    return this.#events.flush();
  }
}
