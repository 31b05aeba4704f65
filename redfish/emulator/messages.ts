/**
 * DMTF messages for the emulator: the Base registry prefix, error bodies with
 * `@Message.ExtendedInfo` (DSP0266 "Error responses"), and the {@link HttpFailure}
 * the handlers throw to answer with one.
 */
import type { Json } from './resources.js';

/** The Base message registry version the emulator speaks. */
export const REG = 'Base.1.16';

/** Options of one DMTF message. */
export interface MessageOptions {
  readonly resolution?: string;
  readonly related?: string[];
  readonly args?: string[];
  /** `MessageSeverity` (default Warning: the emulator's own messages are mostly refusals). */
  readonly severity?: 'OK' | 'Warning' | 'Critical';
}

/** One `#Message.v1_1_1.Message` (an entry of `@Message.ExtendedInfo`). */
export function message(messageId: string, text: string, opts: MessageOptions = {}): Json {
  return {
    '@odata.type': '#Message.v1_1_1.Message',
    MessageId: messageId,
    Message: text,
    MessageArgs: opts.args ?? [],
    RelatedProperties: opts.related ?? [],
    MessageSeverity: opts.severity ?? 'Warning',
    Resolution: opts.resolution ?? 'Correct the request and resubmit it.',
  };
}

/**
 * A DMTF error body. Base registry ids become the `error.code` themselves; other
 * registries' ids (iLO, TaskEvent…) sit under `Base.GeneralError`, as real BMCs do.
 */
export function errorBody(messageId: string, text: string, opts: MessageOptions = {}): Json {
  return {
    error: {
      code: messageId.startsWith(REG) ? messageId : `${REG}.GeneralError`,
      message: messageId.startsWith(REG)
        ? text
        : 'A general error has occurred. See ExtendedInfo for more information.',
      '@Message.ExtendedInfo': [message(messageId, text, opts)],
    },
  };
}

/** A response the handlers throw: status, DMTF body and extra headers. */
export class HttpFailure {
  constructor(
    readonly status: number,
    readonly body: Json | undefined,
    readonly headers: Record<string, string> = {},
  ) {}
}

/** Builds an {@link HttpFailure} carrying a DMTF error body. */
export const fail = (
  status: number,
  id: string,
  text: string,
  opts?: MessageOptions,
  headers?: Record<string, string>,
): HttpFailure => new HttpFailure(status, errorBody(id, text, opts), headers);

/** What a handler answers. */
export interface Reply {
  readonly status: number;
  readonly body?: Json;
  /** A non-JSON body (the CSDL `$metadata`), sent with `contentType`. */
  readonly text?: string;
  readonly contentType?: string;
  readonly headers?: Record<string, string>;
}
