/**
 * What a device's sZTP traffic means for its state: the lifecycle owner's side
 * of the port `sztp-server/` defines (`DeviceLifecycle`). Structurally typed so
 * `bootstrap/` does not import the server side (DESIGN.md module table); `cli/`
 * hands an instance to the bootstrap server.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../db/index.js';

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
 * tells registered listeners of every contact and progress report.
 */
export class DeviceStateLifecycle {
  readonly #db: Kysely<Database>;
  readonly #listeners = new Set<DeviceEventListener>();

  constructor(db: Kysely<Database>) {
    this.#db = db;
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
    });
    this.#tell({ kind: 'progress', progress: p });
  }
}
