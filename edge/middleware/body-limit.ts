import { bodyLimit } from 'hono/body-limit';
import { ApiError } from '../lib/errors.ts';

export const JSON_BODY_LIMIT_BYTES = 64 * 1024;

/** Rejects bodies over `maxBytes` with 413 in the API's error shape, also when the length header is absent. */
export const limitBody = (maxBytes: number) =>
  bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new ApiError(413, 'payload_too_large', `request body exceeds ${maxBytes} bytes`, { max_bytes: maxBytes });
    },
  });
