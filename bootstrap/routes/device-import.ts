/**
 * `POST /api/v1/devices:import`: many devices (and the BMCs they are reached
 * through) from one CSV or NDJSON body. Every row is created, updated or
 * refused with its reason; a row is written in one transaction (its BMC, its
 * device, its audit records) or not at all, so a refused or failed row never
 * leaves a device pointing at a BMC that is not there. `dryRun=true` reports
 * what would happen and writes nothing; `atomic=true` writes every row in one
 * transaction, and nothing at all when any row is refused.
 *
 * Bounded before any work: the body size (Fastify's body limit on this route),
 * the length of each line/record (csv-parse's `max_record_size`, a byte count
 * per NDJSON line) and the number of rows (parsing stops one row past it).
 */
import { Ajv, type ErrorObject } from 'ajv';
import { parse as csvParser, type Info as CsvInfo } from 'csv-parse';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import { type Static, Type } from 'typebox';
import type { Database } from '../../db/index.js';
import { audit, setAudit } from '../audit.js';
import type { BmcInput, BmcStore, BmcView } from '../bmc-store.js';
import { ApiError, type ApiErrorCode } from '../errors.js';
import type { ApiContext, ApiInstance, ApiRoutes } from '../operator-api.js';
import { BmcFields, BmcId, normalizeBmcAddress, normalizeCaBundle } from './bmcs.js';
import { isForeignKeyViolation, Labels, Serial } from './devices.js';
import { ResourceName } from './profiles.js';

/** Import bounds (the README states them). */
export const IMPORT_LIMITS = Object.freeze({
  /** Largest body, bytes. */
  bodyBytes: 8 * 1024 * 1024,
  /** Most rows (data rows; the CSV header is not one). */
  rows: 10_000,
  /** Longest line (NDJSON) or record (CSV, quoted newlines included), bytes. */
  lineBytes: 16 * 1024,
});

/** The import's columns (CSV header names, NDJSON keys), in documented order. */
export const IMPORT_COLUMNS = [
  'serial',
  'profile',
  'hwModel',
  'labels',
  'bmc',
  'bmcAddress',
  'bmcUsername',
  'bmcPassword',
  'bmcCaCertificate',
  'bmcInsecure',
  'bmcAuth',
  'bmcProfile',
  'bmcSystem',
] as const;
type Column = (typeof IMPORT_COLUMNS)[number];

const BMC_COLUMNS = [
  'bmcAddress',
  'bmcUsername',
  'bmcPassword',
  'bmcCaCertificate',
  'bmcInsecure',
  'bmcAuth',
  'bmcProfile',
  'bmcSystem',
] as const satisfies readonly Column[];

const Row = Type.Object(
  {
    serial: Serial,
    profile: Type.Optional(ResourceName),
    hwModel: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    labels: Type.Optional(Labels),
    bmc: Type.Optional(BmcId),
    bmcAddress: Type.Optional(BmcFields.address),
    bmcUsername: Type.Optional(BmcFields.username),
    bmcPassword: Type.Optional(BmcFields.password),
    bmcCaCertificate: Type.Optional(BmcFields.caCertificate),
    bmcInsecure: Type.Optional(BmcFields.insecure),
    bmcAuth: Type.Optional(BmcFields.auth),
    bmcProfile: Type.Optional(BmcFields.profile),
    bmcSystem: Type.Optional(BmcFields.system),
  },
  { additionalProperties: false },
);
type RowT = Static<typeof Row>;

// Rows are validated like JSON bodies: strictly, no coercion (CSV cells are converted first).
const validateRow = new Ajv({ allErrors: false, strict: false, coerceTypes: false }).compile<RowT>(Row);

const RowResult = Type.Object({
  line: Type.Integer({ description: 'line of the body the row ends on (CSV header = line 1)' }),
  serial: Type.Optional(Type.String()),
  result: Type.Union([Type.Literal('created'), Type.Literal('updated'), Type.Literal('refused')], {
    description: 'with dryRun or a refused atomic import: what would have happened',
  }),
  bmc: Type.Optional(
    Type.Object({
      id: Type.String(),
      result: Type.Union([Type.Literal('created'), Type.Literal('updated'), Type.Literal('unchanged')]),
    }),
  ),
  error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
});
type RowResultT = Static<typeof RowResult>;

const ImportResult = Type.Object(
  {
    applied: Type.Boolean({ description: 'false for dryRun, and for an atomic import with a refused row' }),
    counts: Type.Object({
      created: Type.Integer(),
      updated: Type.Integer(),
      refused: Type.Integer(),
    }),
    rows: Type.Array(RowResult),
  },
  { $id: 'ImportResult' },
);

const IMPORT_TYPES = ['text/csv', 'application/x-ndjson', 'application/ndjson'];

function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}

/** Options of {@link deviceImportRoutes}. */
export interface DeviceImportOptions {
  store: BmcStore;
  limits?: Partial<typeof IMPORT_LIMITS>;
}

class RowError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A parsed row before validation: the line it ends on and its fields (or why it has none). */
interface RawRow {
  line: number;
  fields?: Record<string, unknown>;
  error?: RowError;
}

/**
 * A BMC id from its address: the host (IPv6 brackets dropped, other characters that may not
 * be in an id turned into `-`), then `-<port>` for a non-default port. `https://10.0.0.5:8443`
 * → `10.0.0.5-8443`, `https://[fd00::5]` → `fd00--5`.
 */
export function bmcIdFromAddress(origin: string): string {
  const u = new URL(origin);
  const host = u.hostname.replace(/^\[|\]$/g, '').replace(/[^A-Za-z0-9._-]/g, '-');
  return `${host}${u.port ? `-${u.port}` : ''}`.replace(/^[^A-Za-z0-9]+/, '').slice(0, 128);
}

/** `k=v;k2=v2` (the CSV form of labels). */
function csvLabels(cell: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of cell.split(';')) {
    if (pair.trim() === '') continue;
    const i = pair.indexOf('=');
    if (i <= 0) throw new RowError('API_ERR_VALIDATION', `labels: ${JSON.stringify(pair)} is not key=value`);
    out[pair.slice(0, i).trim()] = pair.slice(i + 1).trim();
  }
  return out;
}

function tooLarge(message: string): ApiError {
  return new ApiError('API_ERR_BODY_TOO_LARGE', message);
}

/**
 * csv-parse fed in 64 KiB pieces with the event loop let go between them (a full body is
 * ~0.25 s of parsing); stops at `to` records, as the parser ends itself there.
 */
function parseCsvPieces(
  text: string,
  limits: typeof IMPORT_LIMITS,
  turn: () => Promise<void>,
): Promise<{ record: string[]; info: CsvInfo }[]> {
  return new Promise((resolve, reject) => {
    const records: { record: string[]; info: CsvInfo }[] = [];
    let failed = false;
    const parser = csvParser({
      bom: true,
      info: true,
      relax_column_count: true,
      skip_empty_lines: true,
      max_record_size: limits.lineBytes,
      // Header + the row limit + one: enough to know the limit was passed, no more work.
      to: limits.rows + 2,
    });
    parser.on('readable', () => {
      let r: { record: string[]; info: CsvInfo } | null = parser.read();
      while (r !== null) {
        records.push(r);
        r = parser.read();
      }
    });
    parser.on('error', (err) => {
      failed = true;
      reject(err);
    });
    parser.on('end', () => resolve(records));
    void (async () => {
      for (let i = 0; i < text.length && !failed && !parser.writableEnded; i += 64 * 1024) {
        parser.write(text.slice(i, i + 64 * 1024));
        await turn();
      }
      if (!failed && !parser.writableEnded) parser.end();
    })();
  });
}

/** CSV (header row naming columns) → rows of strings converted to the row's types. */
async function csvRows(
  text: string,
  limits: typeof IMPORT_LIMITS,
  turn: () => Promise<void>,
): Promise<RawRow[]> {
  let records: { record: string[]; info: CsvInfo }[];
  try {
    records = await parseCsvPieces(text, limits, turn);
  } catch (err) {
    const e = err as Error & { code?: string; lines?: number };
    if (e.code === 'CSV_MAX_RECORD_SIZE')
      throw tooLarge(`line ${e.lines ?? '?'}: a record is longer than ${limits.lineBytes} bytes`);
    // Only the kind of fault and where: some csv-parse messages quote the field (a password?).
    const what = e.message.split(/[:,]/)[0];
    throw new ApiError('API_ERR_BAD_REQUEST', `CSV: ${what} at line ${e.lines ?? '?'}`);
  }
  const [head, ...body] = records;
  if (!head) throw new ApiError('API_ERR_BAD_REQUEST', 'CSV: empty body (a header row and rows expected)');
  const header = head.record.map((h) => h.trim());
  const seen = new Set<string>();
  for (const h of header) {
    if (!(IMPORT_COLUMNS as readonly string[]).includes(h))
      throw new ApiError(
        'API_ERR_BAD_REQUEST',
        `CSV header: unknown column ${JSON.stringify(h.slice(0, 64))} (known: ${IMPORT_COLUMNS.join(', ')})`,
      );
    if (seen.has(h)) throw new ApiError('API_ERR_BAD_REQUEST', `CSV header: column ${h} given twice`);
    seen.add(h);
  }
  if (!seen.has('serial'))
    throw new ApiError('API_ERR_BAD_REQUEST', 'CSV header: the serial column is required');
  if (body.length > limits.rows) throw tooLarge(`more than ${limits.rows} rows`);
  return body.map(({ record, info }) => {
    const line = info.lines;
    if (record.length !== header.length)
      return {
        line,
        error: new RowError(
          'API_ERR_VALIDATION',
          `the row has ${record.length} fields, the header ${header.length}`,
        ),
      };
    try {
      const fields: Record<string, unknown> = {};
      header.forEach((h, i) => {
        const cell = record[i] as string;
        // An empty cell is a column not given (keeps what is stored).
        if (cell === '') return;
        if (h === 'labels') fields.labels = csvLabels(cell);
        else if (h === 'bmcInsecure') {
          if (!/^(true|false)$/i.test(cell))
            throw new RowError('API_ERR_VALIDATION', 'bmcInsecure: must be true or false');
          fields.bmcInsecure = cell.toLowerCase() === 'true';
        } else fields[h] = cell;
      });
      return { line, fields };
    } catch (err) {
      return { line, error: err as RowError };
    }
  });
}

/** NDJSON: one JSON object per line; blank lines skipped. */
async function ndjsonRows(
  text: string,
  limits: typeof IMPORT_LIMITS,
  turn: () => Promise<void>,
): Promise<RawRow[]> {
  const rows: RawRow[] = [];
  let start = 0;
  let line = 0;
  while (start <= text.length) {
    if ((line & 1023) === 0) await turn();
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    line++;
    const raw = text.slice(start, end);
    start = end + 1;
    if (Buffer.byteLength(raw, 'utf8') > limits.lineBytes)
      throw tooLarge(`line ${line}: longer than ${limits.lineBytes} bytes`);
    if (raw.trim() === '') continue;
    if (rows.length === limits.rows) throw tooLarge(`more than ${limits.rows} rows`);
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      // Not the parser's message: it quotes the line, which may hold a password.
      const at = /position (\d+)/.exec((err as Error).message)?.[1];
      rows.push({
        line,
        error: new RowError('API_ERR_VALIDATION', `not valid JSON${at ? ` (at position ${at})` : ''}`),
      });
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      rows.push({ line, error: new RowError('API_ERR_VALIDATION', 'not a JSON object') });
    else rows.push({ line, fields: value as Record<string, unknown> });
  }
  return rows;
}

function ajvMessage(errors: ErrorObject[] | null | undefined): string {
  const e = errors?.[0];
  if (!e) return 'invalid row';
  const field = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  if (e.keyword === 'additionalProperties')
    return `unknown column ${JSON.stringify(String(e.params.additionalProperty).slice(0, 64))}`;
  if (e.keyword === 'required') return `${e.params.missingProperty}: required`;
  return `${field || 'row'}: ${e.message ?? 'invalid'}`;
}

/** A row checked on its own (no database): the device part and the BMC part, or why not. */
interface CheckedRow {
  line: number;
  serial: string;
  device: { profile?: string; hwModel?: string; labels?: Record<string, string> };
  bmcId?: string;
  /** BMC fields the row gives (normalised); undefined when it only names a BMC. */
  bmc?: Partial<BmcInput>;
}

function checkRow(raw: RawRow): CheckedRow | { line: number; serial?: string; error: RowError } {
  const serial = typeof raw.fields?.serial === 'string' ? raw.fields.serial : undefined;
  const refuse = (code: ApiErrorCode, message: string) => ({
    line: raw.line,
    ...(serial ? { serial: serial.slice(0, 128) } : {}),
    error: new RowError(code, message),
  });
  if (raw.error || !raw.fields)
    return refuse(raw.error?.code ?? 'API_ERR_VALIDATION', raw.error?.message ?? '');
  if (!validateRow(raw.fields)) return refuse('API_ERR_VALIDATION', ajvMessage(validateRow.errors));
  const r = raw.fields;
  const given = BMC_COLUMNS.filter((c) => r[c] !== undefined);
  let bmc: Partial<BmcInput> | undefined;
  let bmcId = r.bmc;
  if (given.length) {
    bmc = {};
    if (r.bmcAddress !== undefined) {
      const a = normalizeBmcAddress(r.bmcAddress);
      if (typeof a !== 'string') return refuse('API_ERR_BAD_REQUEST', `bmc${a.error.replace(/^a/, 'A')}`);
      bmc.address = a;
      bmcId ??= bmcIdFromAddress(a);
    }
    if (bmcId === undefined)
      return refuse('API_ERR_BAD_REQUEST', `${given.join(', ')} given without bmc or bmcAddress`);
    if (r.bmcCaCertificate !== undefined) {
      if (r.bmcInsecure) return refuse('API_ERR_BAD_REQUEST', 'bmcCaCertificate and bmcInsecure: give one');
      const ca = normalizeCaBundle(r.bmcCaCertificate);
      if (typeof ca !== 'string') return refuse('API_ERR_BAD_REQUEST', `bmcC${ca.error.slice(1)}`);
      bmc.caCertificate = ca;
    }
    if (r.bmcUsername !== undefined) bmc.username = r.bmcUsername;
    if (r.bmcPassword !== undefined) bmc.password = r.bmcPassword;
    if (r.bmcInsecure !== undefined) bmc.insecure = r.bmcInsecure;
    if (r.bmcAuth !== undefined) bmc.auth = r.bmcAuth;
    if (r.bmcProfile !== undefined) bmc.profile = r.bmcProfile;
    if (r.bmcSystem !== undefined) bmc.system = r.bmcSystem;
  }
  return {
    line: raw.line,
    serial: r.serial,
    device: {
      ...(r.profile !== undefined ? { profile: r.profile } : {}),
      ...(r.hwModel !== undefined ? { hwModel: r.hwModel } : {}),
      ...(r.labels !== undefined ? { labels: r.labels } : {}),
    },
    ...(bmcId !== undefined ? { bmcId } : {}),
    ...(bmc ? { bmc } : {}),
  };
}

/** `SELECT key FROM table WHERE key IN (…)` in chunks (10,000 rows stay under parameter limits). */
async function existing(
  db: Kysely<Database>,
  table: 'profiles' | 'devices',
  column: 'name' | 'serial',
  keys: Set<string>,
): Promise<Set<string>> {
  const out = new Set<string>();
  const all = [...keys];
  for (let i = 0; i < all.length; i += 1000) {
    const rows = await db
      .selectFrom(table as 'devices')
      .select(sql<string>`${sql.ref(column)}`.as('k'))
      .where(sql.ref(column), 'in', all.slice(i, i + 1000))
      .execute();
    for (const r of rows) out.add(r.k);
  }
  return out;
}

/** What a row will do, decided before anything is written. */
interface Plan {
  row: CheckedRow;
  deviceExists: boolean;
  /** The BMC to write (merged over the stored one), or undefined to leave it as it is. */
  bmcWrite?: BmcInput;
  bmcResult?: 'created' | 'updated' | 'unchanged';
}

/** Registers `POST /devices:import` (its own content-type parsers stay inside this route's scope). */
export function deviceImportRoutes(opts: DeviceImportOptions): ApiRoutes {
  const limits = { ...IMPORT_LIMITS, ...(opts.limits ?? {}) };
  const { store } = opts;
  return async (api: ApiInstance, ctx: ApiContext) => {
    await api.register(async (scope: FastifyInstance) => {
      const sub = scope as unknown as ApiInstance;
      sub.addContentTypeParser(
        IMPORT_TYPES,
        { parseAs: 'string', bodyLimit: limits.bodyBytes },
        (_req, body, done) => done(null, body),
      );
      sub.post(
        // `::` is a literal colon in a Fastify path (Google AIP-136 custom method style).
        '/devices::import',
        {
          bodyLimit: limits.bodyBytes,
          // Before the body schema, so a JSON body is 415 (wrong type), not 400.
          preValidation: async (req) => {
            if (
              !IMPORT_TYPES.includes(mediaType(req.headers['content-type'])) ||
              typeof req.body !== 'string'
            )
              throw new ApiError('API_ERR_UNSUPPORTED_MEDIA_TYPE', 'send text/csv or application/x-ndjson');
          },
          schema: {
            operationId: 'importDevices',
            tags: ['devices'],
            summary:
              'Create or update many devices and their BMCs from CSV (header row) or NDJSON; each row created, updated or refused with its reason',
            description:
              'Each row is checked whole and then created, updated or refused with its reason; `dryRun` ' +
              'writes nothing, `atomic` writes all rows or none. A row may create or update its BMC.',
            consumes: ['text/csv', 'application/x-ndjson'],
            querystring: Type.Object(
              {
                dryRun: Type.Optional(Type.Boolean({ description: 'check every row, write nothing' })),
                atomic: Type.Optional(
                  Type.Boolean({
                    description: 'all rows in one transaction; nothing when any row is refused',
                  }),
                ),
              },
              { additionalProperties: false },
            ),
            body: Type.String({
              description: `columns: ${IMPORT_COLUMNS.join(', ')}; at most ${limits.rows} rows, ${limits.lineBytes} bytes a line`,
            }),
            response: { 200: ImportResult },
          },
        },
        async (req) => {
          const type = mediaType(req.headers['content-type']);
          const turn = yielder();
          const raws =
            type === 'text/csv'
              ? await csvRows(req.body, limits, turn)
              : await ndjsonRows(req.body, limits, turn);
          const dryRun = req.query.dryRun === true;
          const atomic = req.query.atomic === true;
          const result = await importRows(ctx.db, store, raws, {
            dryRun,
            atomic,
            actor: req.actor!.name,
            log: req.log,
            turn,
          });
          // Rows written are audited one by one (with their BMCs) in their own transactions,
          // and an import that wrote nothing changed nothing: no request-level record.
          setAudit(req, { skip: true });
          return result;
        },
      );
    });
  };
}

/**
 * Lets the event loop run when this import has held it for 20 ms. Embedded PGlite answers
 * queries in process, resolving promises without ever returning to the event loop, so
 * without this a large import would stall every other request (RESTCONF, image reads)
 * of the process until it finished.
 */
function yielder(): () => Promise<void> {
  let since = performance.now();
  return async () => {
    if (performance.now() - since < 20) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    since = performance.now();
  };
}

async function importRows(
  db: Kysely<Database>,
  store: BmcStore,
  raws: RawRow[],
  o: {
    dryRun: boolean;
    atomic: boolean;
    actor: string;
    log: { error(obj: unknown, msg: string): void };
    turn: () => Promise<void>;
  },
): Promise<Static<typeof ImportResult>> {
  const { turn } = o;
  const results: RowResultT[] = [];
  const checked: CheckedRow[] = [];
  const refuse = (line: number, serial: string | undefined, e: RowError) =>
    results.push({
      line,
      ...(serial !== undefined ? { serial } : {}),
      result: 'refused',
      error: { code: e.code, message: e.message },
    });
  for (const raw of raws) {
    await turn();
    const c = checkRow(raw);
    if ('error' in c) refuse(c.line, c.serial, c.error);
    else checked.push(c);
  }

  // Database facts, read once for all rows.
  const profiles = await existing(
    db,
    'profiles',
    'name',
    new Set(checked.flatMap((c) => (c.device.profile ? [c.device.profile] : []))),
  );
  const devices = await existing(db, 'devices', 'serial', new Set(checked.map((c) => c.serial)));
  const bmcIds = [...new Set(checked.flatMap((c) => (c.bmcId ? [c.bmcId] : [])))];
  const bmcs: Map<string, BmcView> = bmcIds.length ? await store.views(bmcIds) : new Map();

  const plans: Plan[] = [];
  const serialLine = new Map<string, number>();
  // Per BMC: the settings the first row that gave any set, and that row's line.
  const bmcGiven = new Map<string, { key: string; line: number }>();
  const bmcKnown = new Set(bmcs.keys());
  for (const row of checked) {
    await turn();
    const prior = serialLine.get(row.serial);
    if (prior !== undefined) {
      refuse(
        row.line,
        row.serial,
        new RowError('API_ERR_CONFLICT', `serial ${row.serial} is also on line ${prior}`),
      );
      continue;
    }
    if (row.device.profile && !profiles.has(row.device.profile)) {
      refuse(
        row.line,
        row.serial,
        new RowError('API_ERR_BAD_REQUEST', `profile: no profile named ${row.device.profile}`),
      );
      continue;
    }
    const plan: Plan = { row, deviceExists: devices.has(row.serial) };
    if (row.bmcId) {
      const id = row.bmcId;
      if (row.bmc) {
        const key = JSON.stringify(row.bmc);
        const first = bmcGiven.get(id);
        if (first && first.key !== key) {
          refuse(
            row.line,
            row.serial,
            new RowError('API_ERR_CONFLICT', `BMC ${id} is given different settings on line ${first.line}`),
          );
          continue;
        }
        if (first) plan.bmcResult = 'unchanged';
        else {
          const stored = bmcs.get(id);
          if (!stored && !bmcKnown.has(id)) {
            const missing = (['address', 'username', 'password'] as const).filter(
              (k) => row.bmc?.[k] === undefined,
            );
            if (missing.length) {
              refuse(
                row.line,
                row.serial,
                new RowError(
                  'API_ERR_BAD_REQUEST',
                  `BMC ${id} does not exist: ${missing.map((k) => `bmc${k[0]!.toUpperCase()}${k.slice(1)}`).join(', ')} needed to create it`,
                ),
              );
              continue;
            }
          }
          // Columns the row leaves empty keep what the stored BMC has (merge, not replace).
          const b = row.bmc;
          const insecure = b.insecure ?? (b.caCertificate ? false : (stored?.insecure ?? false));
          const ca = b.caCertificate ?? (insecure ? undefined : stored?.caCertificate);
          plan.bmcWrite = {
            address: (b.address ?? stored?.address) as string,
            username: (b.username ?? stored?.username) as string,
            password: b.password,
            caCertificate: ca,
            insecure,
            auth: b.auth ?? stored?.auth ?? 'auto',
            profile: b.profile ?? stored?.profile,
            system: b.system ?? stored?.system,
            labels: stored?.labels ?? {},
          };
          plan.bmcResult = stored ? 'updated' : 'created';
          // Re-importing the same file leaves a BMC as it is (and keeps its lastCheck).
          if (stored && (await sameBmc(store, stored, plan.bmcWrite))) {
            plan.bmcWrite = undefined;
            plan.bmcResult = 'unchanged';
          }
          bmcGiven.set(id, { key, line: row.line });
          bmcKnown.add(id);
        }
      } else if (!bmcKnown.has(id)) {
        refuse(
          row.line,
          row.serial,
          new RowError(
            'API_ERR_UNKNOWN_BMC',
            `bmc: no BMC ${id} (give bmcAddress, bmcUsername and bmcPassword to create it)`,
          ),
        );
        continue;
      }
    }
    serialLine.set(row.serial, row.line);
    plans.push(plan);
  }

  const refusedBeforeWrite = results.length;
  const applied = !o.dryRun && !(o.atomic && refusedBeforeWrite > 0);
  const done = (p: Plan): RowResultT => ({
    line: p.row.line,
    serial: p.row.serial,
    result: p.deviceExists ? 'updated' : 'created',
    ...(p.row.bmcId ? { bmc: { id: p.row.bmcId, result: p.bmcResult ?? 'unchanged' } } : {}),
  });
  if (!applied) results.push(...plans.map(done));
  else if (o.atomic) {
    await db
      .transaction()
      .execute(async (trx) => {
        for (const p of plans) {
          results.push(await applyRow(trx, store, p, o.actor));
          await turn();
        }
      })
      .catch((err: unknown) => {
        // The one transaction rolled back: nothing of the import was written.
        if (isForeignKeyViolation(err))
          throw new ApiError(
            'API_ERR_CONFLICT',
            'a profile or BMC the import names was deleted while it ran; nothing was written',
          );
        throw err;
      });
  } else {
    for (const p of plans) {
      await turn();
      try {
        results.push(await db.transaction().execute((trx) => applyRow(trx, store, p, o.actor)));
      } catch (err) {
        // Nothing of the row was written (its transaction rolled back).
        if (isForeignKeyViolation(err))
          refuse(
            p.row.line,
            p.row.serial,
            new RowError('API_ERR_CONFLICT', 'its profile or BMC was deleted while the import ran'),
          );
        else {
          o.log.error({ err, line: p.row.line }, 'import row failed');
          refuse(
            p.row.line,
            p.row.serial,
            new RowError('API_ERR_INTERNAL', 'the row could not be written; the log has the details'),
          );
        }
      }
    }
  }
  results.sort((a, b) => a.line - b.line);
  const counts = { created: 0, updated: 0, refused: 0 };
  for (const r of results) counts[r.result]++;
  return { applied, counts, rows: results };
}

/** Whether writing `input` would leave the stored BMC as it is (the password compared opened). */
async function sameBmc(store: BmcStore, stored: BmcView, input: BmcInput): Promise<boolean> {
  const same =
    input.address === stored.address &&
    input.username === stored.username &&
    input.caCertificate === stored.caCertificate &&
    input.insecure === stored.insecure &&
    input.auth === stored.auth &&
    input.profile === stored.profile &&
    input.system === stored.system;
  if (!same || input.password === undefined) return same;
  try {
    return (await store.target(stored.id))?.password === input.password;
  } catch {
    return false; // a password the key cannot open is replaced
  }
}

/** Writes one planned row: its BMC (if it gives BMC settings), its device, and their audit records. */
async function applyRow(trx: Kysely<Database>, store: BmcStore, p: Plan, actor: string): Promise<RowResultT> {
  const { row } = p;
  let bmcResult = p.bmcResult;
  if (p.bmcWrite && row.bmcId) {
    const { created } = await store.put(row.bmcId, p.bmcWrite, trx);
    bmcResult = created ? 'created' : 'updated';
    await audit(trx, actor, created ? 'bmc.create' : 'bmc.update', row.bmcId, {
      via: 'import',
      passwordChanged: p.bmcWrite.password !== undefined,
    });
  }
  const set = {
    ...(row.device.profile !== undefined ? { profile: row.device.profile } : {}),
    ...(row.device.hwModel !== undefined ? { hw_model: row.device.hwModel } : {}),
    ...(row.device.labels !== undefined ? { labels: JSON.stringify(row.device.labels) } : {}),
    ...(row.bmcId !== undefined ? { bmc: row.bmcId } : {}),
    updated_at: new Date(),
  };
  const r = await trx
    .insertInto('devices')
    .values({ serial: row.serial, ...set })
    .onConflict((oc) => oc.column('serial').doUpdateSet(set))
    .returning(sql<boolean>`(xmax = 0)`.as('inserted'))
    .executeTakeFirstOrThrow();
  await audit(trx, actor, 'device.import', row.serial, {
    fields: Object.keys(set).filter((k) => k !== 'updated_at'),
  });
  return {
    line: row.line,
    serial: row.serial,
    result: r.inserted ? 'created' : 'updated',
    ...(row.bmcId ? { bmc: { id: row.bmcId, result: bmcResult ?? 'unchanged' } } : {}),
  };
}
