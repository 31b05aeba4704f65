/**
 * `GET /api/v1/events`: the event log as Server-Sent Events (WHATWG HTML
 * §9.2). Each event is `id: <event id>`, `event: <type>`, `data: <JSON>`; a
 * client resumes with `Last-Event-ID` (browsers send it on reconnect) or
 * `?after=`, and without either starts at the live end. Filters: `serial`,
 * `job`, `type` (comma-separated patterns: `job.state`, `device.*`).
 *
 * A stream first reads what it missed from the table (only up to the hub's
 * high-water mark, so nothing can be both read and pushed), then takes live
 * batches from the process's one {@link EventHub}. Memory per stream is
 * bounded: a client whose unsent bytes pass `maxBufferedBytes` is cut off
 * (it reconnects with `Last-Event-ID` and loses nothing); streams per process
 * are capped (`API_ERR_TOO_MANY_STREAMS`).
 */
import type { ServerResponse } from 'node:http';
import { Type } from 'typebox';
import { ApiError } from '../errors.js';
import {
  EVENT_PATTERN,
  EVENT_TYPES,
  type EventFilter,
  type EventHub,
  type EventLog,
  type EventView,
  eventMatches,
  isEventPattern,
} from '../events.js';
import type { ApiRoutes } from '../operator-api.js';
import { Serial } from './devices.js';

/** What the event stream needs. */
export interface EventRoutesOptions {
  log: EventLog;
  hub: EventHub;
  /** Comment line sent when otherwise idle, so proxies and clients see a live connection (default 15 s). */
  heartbeatMs?: number;
  /** Concurrent streams per process (default 256). */
  maxStreams?: number;
  /** Unsent bytes a stream may hold before the client is cut off as too slow (default 1 MiB). */
  maxBufferedBytes?: number;
  /** Live events held per stream while it catches up before re-reading instead (default 10,000). */
  maxPending?: number;
}

const Id = Type.String({ pattern: '^\\d{1,18}$' });
const MAX_PATTERNS = 20;

function parseTypes(s: string | undefined): string[] | undefined {
  if (s === undefined || s === '') return undefined;
  const types = s.split(',').map((t) => t.trim());
  if (types.length > MAX_PATTERNS || !types.every(isEventPattern))
    throw new ApiError(
      'API_ERR_BAD_REQUEST',
      `type: up to ${MAX_PATTERNS} comma-separated patterns like job.state, device.* or *`,
    );
  return types;
}

function frame(e: EventView): string {
  // JSON.stringify never emits a raw newline, so one data: line is enough.
  return `id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
}

/** The event stream route module. */
export function eventRoutes(o: EventRoutesOptions): ApiRoutes {
  const heartbeatMs = o.heartbeatMs ?? 15_000;
  const maxStreams = o.maxStreams ?? 256;
  const maxBuffered = o.maxBufferedBytes ?? 1024 * 1024;
  const maxPending = o.maxPending ?? 10_000;
  const open = new Set<ServerResponse>();

  return (api) => {
    // Open streams never finish on their own: end them before the server waits for idle connections.
    api.addHook('preClose', (done) => {
      for (const raw of open) raw.end();
      done();
    });

    api.get(
      '/events',
      {
        // HEAD of an endless stream would hold a subscriber for a body nobody receives.
        exposeHeadRoute: false,
        schema: {
          tags: ['events'],
          operationId: 'streamEvents',
          summary: 'Device and job events as Server-Sent Events (text/event-stream)',
          description:
            'Each event: `id:` (resume with Last-Event-ID or ?after=), `event:` (its type), `data:` (JSON). ' +
            'Without Last-Event-ID or ?after= the stream starts at the live end; ?after=0 replays the log. ' +
            `A comment line every ${heartbeatMs / 1000} s keeps idle connections open. A client that ` +
            'does not keep up is disconnected and should reconnect with Last-Event-ID. ' +
            `Types: ${EVENT_TYPES.map((t) => `\`${t}\``).join(', ')}.`,
          querystring: Type.Object(
            {
              after: Type.Optional(Id),
              serial: Type.Optional(Serial),
              job: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
              type: Type.Optional(
                Type.String({
                  maxLength: 2000,
                  description: `comma-separated patterns (each ${EVENT_PATTERN})`,
                }),
              ),
            },
            { additionalProperties: false },
          ),
          headers: Type.Object({ 'last-event-id': Type.Optional(Id) }),
          produces: ['text/event-stream'],
          response: {
            200: {
              description: 'an endless text/event-stream',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            },
          },
        },
      },
      async (req, reply) => {
        const filter: EventFilter = {
          serial: req.query.serial,
          job: req.query.job,
          types: parseTypes(req.query.type),
        };
        if (open.size >= maxStreams)
          throw new ApiError(
            'API_ERR_TOO_MANY_STREAMS',
            `this replica already serves ${maxStreams} event streams; retry later or use webhooks`,
          );
        const resumeFrom = req.headers['last-event-id'] ?? req.query.after;
        // "Now" is the log's end, not the hub's mark, which may lag a notification behind.
        let cursor = resumeFrom !== undefined ? BigInt(resumeFrom) : await o.log.lastId();

        reply.hijack();
        const raw = reply.raw;
        raw.writeHead(200, {
          ...(reply.getHeaders() as Record<string, string>),
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store',
          connection: 'keep-alive',
          // nginx: do not buffer the stream
          'x-accel-buffering': 'no',
        });
        open.add(raw);
        raw.write(': dpu-ztp events\n\n');

        let closed = false;
        let live = false;
        let overflow = false;
        let pending: EventView[] = [];
        let sentUpTo = cursor;
        const close = () => {
          if (closed) return;
          closed = true;
          open.delete(raw);
          unsubscribe();
          clearInterval(heartbeat);
        };
        const drop = (why: string) => {
          req.log.info({ why, buffered: raw.writableLength }, 'event stream dropped');
          close();
          raw.destroy();
        };
        /** Writes events past what was sent; false when the client is over its buffer. */
        const send = (events: readonly EventView[]): boolean => {
          let chunk = '';
          for (const e of events) {
            const id = BigInt(e.id);
            if (id <= sentUpTo) continue;
            sentUpTo = id;
            if (eventMatches(e, filter)) chunk += frame(e);
          }
          if (chunk) raw.write(chunk);
          return raw.writableLength <= maxBuffered;
        };
        const unsubscribe = o.hub.subscribe((batch) => {
          if (closed) return;
          if (live) {
            if (!send(batch)) drop('slow client');
            return;
          }
          if (pending.length + batch.length > maxPending) {
            overflow = true;
            pending = [];
          } else pending.push(...batch);
        });
        const heartbeat = setInterval(() => {
          raw.write(': keepalive\n\n');
          if (raw.writableLength > maxBuffered) drop('slow client');
        }, heartbeatMs);
        heartbeat.unref();
        raw.on('close', close);
        raw.on('error', close);
        // The client may have gone while the token was looked up: 'close' already fired.
        if (raw.destroyed || !raw.socket || raw.socket.destroyed) {
          close();
          return;
        }

        try {
          // Catch up from the table up to the hub's mark; what comes later the hub pushes.
          let upto = o.hub.highWater;
          for (;;) {
            while (!closed && cursor < upto) {
              const rows = await o.log.read({ ...filter, after: cursor, upto, limit: 500 });
              if (rows.length === 0) break;
              cursor = BigInt(rows[rows.length - 1]!.id);
              // During catch-up the pace is ours: wait for the client instead of dropping it.
              if (!send(rows))
                await new Promise((r) => {
                  raw.once('drain', r);
                  raw.once('close', r);
                });
            }
            if (closed) return;
            if (sentUpTo < upto) sentUpTo = upto;
            cursor = sentUpTo;
            if (!overflow) break;
            overflow = false;
            upto = o.hub.highWater;
          }
          live = true;
          const held = pending;
          pending = [];
          if (!send(held)) drop('slow client');
        } catch (err) {
          req.log.error({ err }, 'event stream failed');
          close();
          raw.destroy();
        }
      },
    );
  };
}
