// Cursor pagination, newest first. Ids sort by creation time, so the cursor is the last id returned, wrapped so that
// clients treat it as opaque.
import { z } from '@hono/zod-openapi';
import { badRequest } from './errors.ts';

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(DEFAULT_PAGE_SIZE).openapi({ example: 20 }),
  cursor: z.string().max(200).optional().openapi({ description: 'next_cursor from the previous page' }),
});

export function encodeCursor(lastId: string): string {
  return btoa(JSON.stringify({ before: lastId })).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  try {
    const padded = cursor.replaceAll('-', '+').replaceAll('_', '/');
    const parsed = JSON.parse(atob(padded + '='.repeat((4 - (padded.length % 4)) % 4))) as unknown;
    const before = z.object({ before: z.string().regex(/^[a-z]{3}_[0-9A-Za-z]{1,60}$/) }).parse(parsed).before;
    return before;
  } catch {
    throw badRequest('invalid_cursor', 'cursor is not one this API returned');
  }
}

/** Given `limit + 1` rows, returns the page and the cursor of the next one. */
export function page<T extends { id: string }>(rows: T[], limit: number): { items: T[]; nextCursor: string | null } {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > limit && last ? encodeCursor(last.id) : null };
}
