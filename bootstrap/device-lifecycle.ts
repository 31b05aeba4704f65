/**
 * What a device's sZTP traffic means for its state: the lifecycle owner's side
 * of the port `sztp-server/` defines (`DeviceLifecycle`). Structurally typed so
 * `bootstrap/` does not import the server side (DESIGN.md module table); `cli/`
 * hands an instance to the bootstrap server.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../db/index.js';
import { EventLog } from './events.js';

/** A device's get-bootstrapping-data as the bootstrap server saw it. */
export interface DeviceContact {
  serial: string;
  at: Date;
  result: string;
  remoteAddress?: string | undefined;
}

/** A device's report-progress as the bootstrap server received it. */
export interface DeviceProgress {
  serial: string;
  at: Date;
  progressType: string;
  message?: string | undefined;
  remoteAddress?: string | undefined;
  tlsIdentity: string;
  sshHostKeys?: ReadonlyArray<unknown> | undefined;
  trustAnchorCerts?: readonly string[] | undefined;
}

/** Listener told after a device event was applied (provisioning jobs wait on these). */
export type DeviceEventListener = (
  event: { kind: 'contact'; contact: DeviceContact } | { kind: 'progress'; progress: DeviceProgress },
) => void;

/** The state a progress type moves a device to (RFC 8572 §7.2 progress types), if any. */
export function stateAfterProgress(
  progressType: string,
): 'bootstrapping' | 'provisioned' | 'failed' | undefined {
  if (progressType === 'bootstrap-initiated') return 'bootstrapping';
  if (progressType === 'bootstrap-complete') return 'provisioned';
  if (progressType.endsWith('-error')) return 'failed';
  return undefined;
}

/**
 * Stores progress reports in the append-only log and moves the device's state;
 * tells registered listeners of every contact and progress report. Each report
 * is also a `device.progress` event (and a state move a `device.state` event)
 * in the event log, written in the same transaction as the progress row.
 */
export class DeviceStateLifecycle {
  readonly #db: Kysely<Database>;
  readonly #events: EventLog;
  readonly #listeners = new Set<DeviceEventListener>();

  /** `events` defaults to an event log on `db`. */
  constructor(db: Kysely<Database>, opts: { events?: EventLog } = {}) {
    this.#db = db;
    this.#events = opts.events ?? new EventLog(db);
  }

  /** Registers a listener; returns a function that removes it. */
  subscribe(listener: DeviceEventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #tell(event: Parameters<DeviceEventListener>[0]): void {
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch {
        // a listener's failure is its own; the device's RPC never sees it
      }
    }
  }

  /** See `DeviceLifecycle.onBootstrapRequest`: never throws, never delays the RPC. */
  onBootstrapRequest(contact: DeviceContact): void {
    this.#tell({ kind: 'contact', contact });
  }

  /** See `DeviceLifecycle.onProgress`: one transaction for the log row and the device row. */
  async onProgress(p: DeviceProgress): Promise<void> {
    await this.#db.transaction().execute(async (tx) => {
      await tx
        .insertInto('bootstrap_events')
        .values({
          serial: p.serial,
          kind: 'progress',
          progress_type: p.progressType,
          message: p.message ?? null,
          remote_address: p.remoteAddress ?? null,
          tls_identity: p.tlsIdentity,
          detail:
            p.sshHostKeys || p.trustAnchorCerts
              ? JSON.stringify({
                  sshHostKeys: p.sshHostKeys ?? [],
                  trustAnchorCerts: p.trustAnchorCerts ?? [],
                })
              : null,
          created_at: p.at,
        })
        .execute();
      const state = stateAfterProgress(p.progressType);
      // The row lock orders concurrent reports of one device, so each state
      // event names the state it really left.
      const before = await tx
        .selectFrom('devices')
        .select('state')
        .where('serial', '=', p.serial)
        .forUpdate()
        .executeTakeFirst();
      await tx
        .updateTable('devices')
        .set({
          last_progress_type: p.progressType,
          last_progress_message: p.message ?? null,
          last_progress_at: p.at,
          updated_at: p.at,
          ...(state ? { state } : {}),
          ...(p.progressType === 'bootstrap-complete'
            ? {
                ssh_host_keys: JSON.stringify(p.sshHostKeys ?? []),
                trust_anchor_certs: JSON.stringify(p.trustAnchorCerts ?? []),
              }
            : {}),
        })
        .where('serial', '=', p.serial)
        .execute();
      await this.#events.append(
        {
          type: 'device.progress',
          serial: p.serial,
          data: { progressType: p.progressType, ...(p.message !== undefined ? { message: p.message } : {}) },
        },
        tx,
      );
      if (before && state && before.state !== state) {
        await this.#events.append(
          {
            type: 'device.state',
            serial: p.serial,
            data: { from: before.state, to: state, reason: `progress ${p.progressType}` },
          },
          tx,
        );
      }
    });
    this.#tell({ kind: 'progress', progress: p });
  }
}
