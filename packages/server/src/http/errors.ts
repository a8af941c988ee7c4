/**
 * The one error envelope, and the mapping of every failure to it: domain
 * refusals (values, turned into `ErrorReply` here in the HTTP layer), schema
 * validation, body parsing, unknown routes, and — as a last resort — bugs.
 * Only this layer picks status codes.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ERRORS, IDENTITY_TEXT_PATTERN, type ErrorCode, type ErrorEnvelope } from '@floatd/protocol';
import type { DomainError, Result } from '../domain/result.js';
import { SeatGuardError } from '../domain/effects.js';
import type { Clock } from '../domain/clock.js';
import { STATUS_CODES } from 'node:http';
import { newId } from '../ids.js';
import { describeStorageFailure, LicenseBusyError, storageFailure, type StorageHealth } from '../store/errors.js';

/**
 * An error answer a route or hook throws: the error handler below replies it as the envelope with the
 * status of its code. The server's side of an error; a caller's side (an answer received) is protocol's
 * `ApiError`, which carries the status and request id this reply is given when it is sent.
 */
export class ErrorReply extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ErrorReply';
  }
  static of(e: DomainError): ErrorReply {
    return new ErrorReply(e.code, e.message, e.details);
  }
}

/** The value of an ok result, or throws its refusal as an `ErrorReply` for the error handler. */
export function unwrap<T>(r: Result<T>): T {
  if (!r.ok) throw ErrorReply.of(r.error);
  return r.value;
}

export function envelope(code: ErrorCode, message: string, requestId: string, details: Record<string, unknown> = {}): ErrorEnvelope {
  return { error: { ...details, code, message, requestId } };
}

function send(reply: FastifyReply, req: FastifyRequest, code: ErrorCode, message: string, details?: Record<string, unknown>) {
  if (code === 'UNAUTHENTICATED') reply.header('www-authenticate', 'Bearer');
  const retryAfter = details?.retryAfterSeconds ?? (code === 'RATE_LIMITED' ? 1 : undefined);
  if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
  return reply
    .code(ERRORS[code].status)
    .type('application/json')
    .send(envelope(code, message, req.id, details));
}

/**
 * Fastify's `frameworkErrors` option: errors its router raises before any route, hook or
 * error handler runs (a path that is not valid percent-encoding, a path parameter over
 * `maxParamLength`). Without it fastify answers them in its own JSON shape, not the envelope.
 */
export function frameworkErrors(err: FastifyError, req: FastifyRequest, reply: FastifyReply) {
  reply.header('x-request-id', req.id);
  if (err.code === 'FST_ERR_BAD_URL') return send(reply, req, 'VALIDATION_FAILED', 'the path is not valid percent-encoding');
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH')
    return send(reply, req, 'VALIDATION_FAILED', 'a path parameter is too long', { field: 'params' });
  req.log.error({ err }, 'unhandled framework error');
  return send(reply, req, 'INTERNAL_ERROR', 'internal error; quote the request id when reporting it');
}

/**
 * Fastify's `clientErrorHandler` option: bytes Node's HTTP parser refuses before any request
 * exists (an unknown method, a NUL in the path, a header over 16 KiB, a request too slow to arrive).
 * Fastify's default answers them in its own JSON shape; this answers the one envelope, then closes.
 */
export function clientErrorHandler(this: FastifyInstance, err: NodeJS.ErrnoException, socket: import('node:net').Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [code, message]: [ErrorCode, string] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? ['REQUEST_TIMEOUT', 'the request was not received completely in time']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? ['HEADERS_TOO_LARGE', 'the request line and headers exceed 16 KiB']
        : [
            'MALFORMED_REQUEST',
            `the request is not valid HTTP/1.1${typeof err.code === 'string' && /^HPE_[A-Z_]+$/.test(err.code) ? ` (${err.code})` : ''}`,
          ];
  const requestId = newId('req');
  const body = JSON.stringify(envelope(code, message, requestId));
  const status = ERRORS[code].status;
  this.log.debug({ err: { code: err.code } }, 'client error');
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}

export function installErrorHandling(app: FastifyInstance, health: StorageHealth, clock: Clock): void {
  app.setNotFoundHandler((req, reply) => send(reply, req, 'ROUTE_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`));

  app.setErrorHandler((err: FastifyError | ErrorReply | Error, req, reply) => {
    if (err instanceof ErrorReply) return send(reply, req, err.code, err.message, err.details);
    if (err instanceof SeatGuardError) {
      // The store's guard refused what a decision allowed: never grant; report as no seat and log loudly.
      req.log.error({ err }, 'seat guard refused a decision');
      return send(reply, req, 'NO_SEATS_AVAILABLE', 'no seat is available');
    }
    const fe = err as FastifyError;
    if (fe.validation) {
      const first = fe.validation[0];
      const where = fe.validationContext ?? 'request';
      const path = first?.instancePath ? first.instancePath : '';
      const extra =
        first?.keyword === 'additionalProperties'
          ? ` '${String((first.params as { additionalProperty?: string }).additionalProperty)}'`
          : '';
      // Ajv would quote the pattern (itself a wall of escapes): say what the identity-text rule refuses instead.
      const message =
        first?.keyword === 'pattern' && (first.params as { pattern?: string }).pattern === IDENTITY_TEXT_PATTERN
          ? 'must not contain control characters (C0, C1, DEL) or bidirectional overrides (U+202A-U+202E, U+2066-U+2069)'
          : (first?.message ?? 'is invalid');
      return send(reply, req, 'VALIDATION_FAILED', `${where}${path} ${message}${extra}`, { field: `${where}${path}` });
    }
    // The database could not commit (disk full, I/O error, lock timeout, connection lost): the transaction
    // rolled back, so the client may retry; a 503 with Retry-After says so, where a 500 would read like a bug.
    const storage = fe.statusCode === undefined ? storageFailure(err) : undefined;
    if (storage) {
      // Logged when the storage starts failing (or fails differently); the requests refused meanwhile at debug, not one error line each.
      const known = health.current?.code === storage.code;
      health.failed(storage, clock.now());
      if (known) req.log.debug({ err, storage: storage.kind }, 'storage unavailable');
      else req.log.error({ err, storage: storage.kind }, 'storage unavailable');
      return send(reply, req, 'STORAGE_UNAVAILABLE', describeStorageFailure(storage), { retryAfterSeconds: storage.retryAfterSeconds });
    }
    if (err instanceof LicenseBusyError) return send(reply, req, 'SERVICE_UNAVAILABLE', err.message, { retryAfterSeconds: 1 });
    const status = fe.statusCode ?? 500;
    if (status === 413) return send(reply, req, 'PAYLOAD_TOO_LARGE', 'the request body is too large (limit 64 KiB)');
    if (status === 415) return send(reply, req, 'UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json');
    if (status >= 400 && status < 500) {
      const parse = err instanceof SyntaxError || (fe.code ?? '').startsWith('FST_ERR_CTP') || /prototype/i.test(err.message);
      return send(
        reply,
        req,
        parse ? 'MALFORMED_JSON' : 'VALIDATION_FAILED',
        parse ? `the body is not valid JSON: ${err.message}` : err.message,
      );
    }
    req.log.error({ err }, 'unhandled error');
    return send(reply, req, 'INTERNAL_ERROR', 'internal error; quote the request id when reporting it');
  });
}
