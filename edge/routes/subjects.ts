// Subjects: a person's photos (multipart upload, up to 10 per subject), stored in R2 and owned by one tenant.
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { and, asc, count, desc, eq, inArray, isNull, lt } from 'drizzle-orm';
import { subjectImages, subjects } from '../../db/schema.ts';
import type { AppEnv } from '../app-types.ts';
import { FaceBox, faceBoxInside, sha256Hex } from '../../contract/index.ts';
import { r2Keys } from '../jobs/storage.ts';
import { eraseSubject, KEEPABLE } from '../lib/erasure.ts';
import { ApiError, notFound, unprocessable } from '../lib/errors.ts';
import { looksLikeId, newId } from '../lib/ids.ts';
import { probeImage, uprightSize, type ImageInfo } from '../lib/images.ts';
import { decodeCursor, page, PageQuery } from '../lib/pagination.ts';
import { requireRole, tenantOf } from '../middleware/auth.ts';
import { limitBody } from '../middleware/body-limit.ts';
import { requireContentType } from '../middleware/content-type.ts';
import { idempotency, rememberAnswer } from '../middleware/idempotency.ts';
import { bearer, errorResponses, IdempotencyHeader, IdParam } from './common.ts';
import type { Queryable } from '../db/client.ts';
import { putObjects, commitRowsOrRemove } from '../lib/staged-objects.ts';
import { releaseConnection, releaseConnectionFirst } from '../middleware/database.ts';

export const IMAGE_LIMITS = {
  maxBytes: 10 * 1024 * 1024,
  maxPerSubject: 10,
  minSide: 64,
  maxSide: 4096,
} as const;
/** Multipart framing around ten full-size files. */
const UPLOAD_BODY_LIMIT = IMAGE_LIMITS.maxBytes * IMAGE_LIMITS.maxPerSubject + 1024 * 1024;

// Built from the contract's shape with this module's `z`: the contract's own schema object carries no OpenAPI metadata
// method in workerd.
const FaceBoxSchema = z.object(FaceBox.shape).strict().openapi('FaceBox', {
  description: 'Where the face is: a box in pixels of the upright photo (EXIF orientation applied), origin top left, inside the photo.',
  example: { x: 180, y: 90, width: 260, height: 300 },
});

const SubjectImageSchema = z
  .object({
    id: z.string(),
    content_type: z.enum(['image/jpeg', 'image/png', 'image/webp']),
    width: z.number().int(),
    height: z.number().int(),
    byte_size: z.number().int(),
    sha256: z.string(),
    /** null: the runner crops the centre square. */
    face_box: FaceBoxSchema.nullable(),
    created_at: z.string(),
  })
  .openapi('SubjectImage');

const SubjectSchema = z
  .object({
    object: z.literal('subject'),
    id: z.string().openapi({ example: 'sub_0190b1f2a3c4d5e6f708192a3b4c' }),
    name: z.string(),
    images: z.array(SubjectImageSchema),
    created_at: z.string(),
  })
  .openapi('Subject');

const SubjectList = z.object({ data: z.array(SubjectSchema), next_cursor: z.string().nullable() }).openapi('SubjectList');

const fileField = z
  .union([z.instanceof(File), z.array(z.instanceof(File))])
  .openapi({ type: 'array', items: { type: 'string', format: 'binary' }, description: 'JPEG, PNG or WebP files' });

const faceBoxesField = z.string().optional().openapi({
  description:
    'Optional JSON array with one entry per file of `images`, in the same order: a face box `{"x","y","width","height"}` in pixels of the upright photo, or null for the centre square.',
  example: '[{"x":180,"y":90,"width":260,"height":300},null]',
});

const UploadForm = z.object({
  name: z.string().max(200).optional(),
  images: fileField,
  face_boxes: faceBoxesField,
});
const AddImagesForm = z.object({ images: fileField, face_boxes: faceBoxesField });

const FaceBoxList = z.array(FaceBox.nullable());

/** The `face_boxes` field: absent, or one box (or null) per file. */
export function parseFaceBoxes(raw: string | undefined, files: number): (FaceBox | null)[] {
  if (raw === undefined) return Array.from({ length: files }, () => null);
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw unprocessable('invalid_face_box', '`face_boxes` is not JSON: send an array with a box or null per image');
  }
  const parsed = FaceBoxList.safeParse(json);
  if (!parsed.success) throw unprocessable('invalid_face_box', `\`face_boxes\`: ${z.prettifyError(parsed.error)}`, { issues: parsed.error.issues });
  if (parsed.data.length !== files) {
    throw unprocessable('invalid_face_box', `\`face_boxes\` has ${parsed.data.length} entries for ${files} images: send one (a box or null) per image`);
  }
  return parsed.data;
}

type ImageRow = typeof subjectImages.$inferSelect;
type SubjectRow = typeof subjects.$inferSelect;

function presentSubject(subject: SubjectRow, images: ImageRow[]) {
  return {
    object: 'subject' as const,
    id: subject.id,
    name: subject.name,
    images: images
      .filter((image) => image.status === 'stored')
      .map((image) => ({
        id: image.id,
        content_type: image.contentType as 'image/jpeg' | 'image/png' | 'image/webp',
        width: image.width,
        height: image.height,
        byte_size: image.byteSize,
        sha256: image.sha256,
        face_box: image.faceBox ?? null,
        created_at: image.createdAt.toISOString(),
      })),
    created_at: subject.createdAt.toISOString(),
  };
}

type CheckedImage = { bytes: Uint8Array; info: ImageInfo; sha256: string; filename: string; faceBox: FaceBox | null };

/**
 * Validates every file (and its face box) before anything is stored: one bad file rejects the upload, naming the file
 * and the reason. A box must lie inside the photo as shown (the header's size, turned by its EXIF orientation); the
 * runner checks it again on the decoded pixels.
 */
export async function checkImages(files: File[], faceBoxes: readonly (FaceBox | null)[] = []): Promise<CheckedImage[]> {
  if (files.length === 0) throw unprocessable('no_images', 'send at least one file in the `images` field');
  const checked: CheckedImage[] = [];
  for (const file of files) {
    const name = file.name || `file ${checked.length + 1}`;
    if (file.size > IMAGE_LIMITS.maxBytes) {
      throw new ApiError(413, 'image_too_large', `${name} is ${file.size} bytes; the limit is ${IMAGE_LIMITS.maxBytes}`, { file: name, max_bytes: IMAGE_LIMITS.maxBytes });
    }
    const bytes = new Uint8Array(await file.arrayBuffer());
    const probe = probeImage(bytes);
    if (!probe.ok) throw new ApiError(415, 'unsupported_image', `${name}: ${probe.reason}`, { file: name });
    const { width, height } = probe.info;
    const inRange = (side: number) => side >= IMAGE_LIMITS.minSide && side <= IMAGE_LIMITS.maxSide;
    if (!inRange(width) || !inRange(height)) {
      throw unprocessable('image_dimensions', `${name} is ${width}×${height}; each side must be between ${IMAGE_LIMITS.minSide} and ${IMAGE_LIMITS.maxSide} px`, {
        file: name,
        width,
        height,
      });
    }
    const faceBox = faceBoxes[checked.length] ?? null;
    const upright = uprightSize(probe.info);
    if (faceBox && !faceBoxInside(faceBox, upright.width, upright.height)) {
      throw unprocessable(
        'face_box_outside_image',
        `${name}: the face box (x ${faceBox.x}, y ${faceBox.y}, ${faceBox.width}×${faceBox.height}) does not lie inside the ${upright.width}×${upright.height} photo`,
        { file: name, face_box: faceBox, width: upright.width, height: upright.height },
      );
    }
    checked.push({ bytes, info: probe.info, sha256: await sha256Hex(bytes), filename: name, faceBox });
  }
  return checked;
}

type ImageInsert = typeof subjectImages.$inferInsert & { r2Key: string };

/**
 * The rows of checked images, stored as they are inserted: their objects are written first, under keys made from fresh
 * ids in the caller's tenant (edge/lib/staged-objects.ts).
 */
function imageRows(tenantId: string, subjectId: string, images: readonly CheckedImage[]): ImageInsert[] {
  return images.map((image) => {
    const id = newId('subjectImage');
    return {
      id,
      subjectId,
      tenantId,
      status: 'stored' as const,
      r2Key: r2Keys.subjectImage(tenantId, subjectId, id, image.info.contentType),
      contentType: image.info.contentType,
      byteSize: image.bytes.byteLength,
      width: image.info.width,
      height: image.info.height,
      sha256: image.sha256,
      faceBox: image.faceBox,
    };
  });
}

/** Writes the photos to R2, with no database connection held (see releaseConnectionFirst on the routes below). */
async function putPhotos(bucket: R2Bucket, rows: readonly ImageInsert[], images: readonly CheckedImage[]): Promise<void> {
  await putObjects(
    bucket,
    rows.map((row, i) => ({ key: row.r2Key, bytes: images[i]!.bytes, contentType: row.contentType, sha256: row.sha256 })),
  );
}

/** After a lost COMMIT: which of these photos' rows exist, asked on a fresh connection. */
async function committedPhotoKeys(c: Context<AppEnv>, rows: readonly ImageInsert[]): Promise<string[]> {
  releaseConnection(c);
  const found = await c
    .get('db')
    .select({ r2Key: subjectImages.r2Key })
    .from(subjectImages)
    .where(inArray(subjectImages.id, rows.map((row) => row.id)));
  return found.map((row) => row.r2Key);
}

async function findSubject(db: Queryable, tenantId: string, id: string): Promise<SubjectRow> {
  const [subject] = await db
    .select()
    .from(subjects)
    .where(and(eq(subjects.id, id), eq(subjects.tenantId, tenantId), isNull(subjects.deletedAt)));
  if (!subject) throw notFound('subject', id);
  return subject;
}

async function imagesOf(db: Queryable, subjectIds: string[]): Promise<ImageRow[]> {
  if (subjectIds.length === 0) return [];
  return db.select().from(subjectImages).where(inArray(subjectImages.subjectId, subjectIds)).orderBy(asc(subjectImages.id));
}

function asFiles(value: File | File[]): File[] {
  return Array.isArray(value) ? value : [value];
}

const create = createRoute({
  method: 'post',
  path: '/',
  tags: ['subjects'],
  summary: 'Create a subject with its photos (multipart)',
  security: bearer,
  middleware: [limitBody(UPLOAD_BODY_LIMIT), requireContentType('multipart/form-data')] as const,
  request: {
    headers: IdempotencyHeader,
    body: { required: true, content: { 'multipart/form-data': { schema: UploadForm } } },
  },
  responses: {
    201: { description: 'Created', content: { 'application/json': { schema: SubjectSchema } } },
    ...errorResponses(400, 401, 403, 409, 413, 415, 422),
  },
});

const addImages = createRoute({
  method: 'post',
  path: '/{id}/images',
  tags: ['subjects'],
  summary: 'Add photos to a subject',
  security: bearer,
  middleware: [limitBody(UPLOAD_BODY_LIMIT), requireContentType('multipart/form-data')] as const,
  request: {
    params: IdParam('subject', 'sub_0190b1f2a3c4d5e6f708192a3b4c'),
    headers: IdempotencyHeader,
    body: { required: true, content: { 'multipart/form-data': { schema: AddImagesForm } } },
  },
  responses: {
    200: { description: 'The subject with all its photos', content: { 'application/json': { schema: SubjectSchema } } },
    ...errorResponses(400, 401, 403, 404, 409, 413, 415, 422),
  },
});

const list = createRoute({
  method: 'get',
  path: '/',
  tags: ['subjects'],
  summary: 'List subjects, newest first',
  security: bearer,
  request: { query: PageQuery },
  responses: { 200: { description: 'A page', content: { 'application/json': { schema: SubjectList } } }, ...errorResponses(400, 401, 403, 422) },
});

const get = createRoute({
  method: 'get',
  path: '/{id}',
  tags: ['subjects'],
  summary: 'Get a subject',
  security: bearer,
  request: { params: IdParam('subject', 'sub_0190b1f2a3c4d5e6f708192a3b4c') },
  responses: { 200: { description: 'The subject', content: { 'application/json': { schema: SubjectSchema } } }, ...errorResponses(401, 403, 404) },
});

/** `keep=weights,generations`: what a subject deletion leaves in place (each at most once). */
const KEEP_LIST = new RegExp(`^(${KEEPABLE.join('|')})(,(${KEEPABLE.join('|')}))*$`);
const DeleteSubjectQuery = z.object({
  keep: z
    .string()
    .regex(KEEP_LIST, `a comma-separated list of ${KEEPABLE.join(', ')}`)
    .refine((value) => new Set(value.split(',')).size === value.split(',').length, 'each item at most once')
    .optional()
    .openapi({
      description: 'What to keep: `weights` (the weights trained on the photos), `generations` (images generated with them). By default everything made from the photos is deleted.',
      example: 'weights',
    }),
});

const remove = createRoute({
  method: 'delete',
  path: '/{id}',
  tags: ['subjects'],
  summary: 'Delete a subject, its photos, and the weights and generated images made from them (unless kept)',
  security: bearer,
  request: { params: IdParam('subject', 'sub_0190b1f2a3c4d5e6f708192a3b4c'), query: DeleteSubjectQuery },
  responses: { 204: { description: 'Deleted: nothing of it can be downloaded any more' }, ...errorResponses(401, 403, 404, 422) },
});

const getImage = createRoute({
  method: 'get',
  path: '/{id}/images/{image_id}',
  tags: ['subjects'],
  summary: 'Download one photo of a subject',
  security: bearer,
  request: {
    params: z.object({
      id: z.string().openapi({ param: { name: 'id', in: 'path' } }),
      image_id: z.string().openapi({ param: { name: 'image_id', in: 'path' } }),
    }),
  },
  responses: {
    200: { description: 'The image bytes', content: { 'image/*': { schema: z.string().openapi({ format: 'binary' }) } } },
    ...errorResponses(401, 403, 404),
  },
});

export function subjectsRouter() {
  const app = new OpenAPIHono<AppEnv>();
  app.use('*', requireRole('tenant'));
  // Uploads read their body and write R2 holding no pooled connection: the one auth may have used goes back first, the
  // idempotency claim's after it, and the rows and the answer commit in the handler's own short transaction.
  app.post('/', releaseConnectionFirst(), idempotency({ transaction: 'handler' }));
  app.post('/:id/images', releaseConnectionFirst(), idempotency({ transaction: 'handler' }));

  app.openapi(create, async (c) => {
    const tenantId = tenantOf(c.get('principal'));
    const form = c.req.valid('form');
    const files = asFiles(form.images);
    if (files.length > IMAGE_LIMITS.maxPerSubject) {
      throw unprocessable('too_many_images', `a subject holds at most ${IMAGE_LIMITS.maxPerSubject} images; got ${files.length}`);
    }
    const images = await checkImages(files, parseFaceBoxes(form.face_boxes, files.length));
    const subjectId = newId('subject');
    const rows = imageRows(tenantId, subjectId, images);
    await putPhotos(c.env.BUCKET, rows, images);
    // One short transaction: a subject is never seen without its images (a database outage mid-upload changes nothing).
    const body = await commitRowsOrRemove(c.get('db'), c.env.BUCKET, rows.map((row) => row.r2Key), {
      write: async (tx) => {
        const [subject] = await tx.insert(subjects).values({ id: subjectId, tenantId, name: form.name ?? '' }).returning();
        if (!subject) throw new Error('subject insert returned nothing');
        const body = presentSubject(subject, await tx.insert(subjectImages).values(rows).returning());
        await rememberAnswer(c, tx, 201, body);
        return body;
      },
      committedKeys: () => committedPhotoKeys(c, rows),
    });
    return c.json(body, 201);
  });

  app.openapi(addImages, async (c) => {
    const tenantId = tenantOf(c.get('principal'));
    const { id } = c.req.valid('param');
    // The id goes into the photos' R2 keys before the transaction looks the subject up.
    if (!looksLikeId('subject', id)) throw notFound('subject', id);
    const form = c.req.valid('form');
    const files = asFiles(form.images);
    const images = await checkImages(files, parseFaceBoxes(form.face_boxes, files.length));
    const rows = imageRows(tenantId, id, images);
    await putPhotos(c.env.BUCKET, rows, images);
    const body = await commitRowsOrRemove(c.get('db'), c.env.BUCKET, rows.map((row) => row.r2Key), {
      write: async (tx) => {
        // Lock the subject so two concurrent uploads cannot both pass the per-subject limit.
        const [subject] = await tx
          .select()
          .from(subjects)
          .where(and(eq(subjects.id, id), eq(subjects.tenantId, tenantId), isNull(subjects.deletedAt)))
          .for('update');
        if (!subject) throw notFound('subject', id);
        const [{ value: existing } = { value: 0 }] = await tx.select({ value: count() }).from(subjectImages).where(eq(subjectImages.subjectId, subject.id));
        if (existing + images.length > IMAGE_LIMITS.maxPerSubject) {
          throw unprocessable('too_many_images', `a subject holds at most ${IMAGE_LIMITS.maxPerSubject} images; it has ${existing}, got ${images.length} more`);
        }
        await tx.insert(subjectImages).values(rows);
        const body = presentSubject(subject, await imagesOf(tx, [subject.id]));
        await rememberAnswer(c, tx, 200, body);
        return body;
      },
      committedKeys: () => committedPhotoKeys(c, rows),
    });
    return c.json(body, 200);
  });

  app.openapi(list, async (c) => {
    const tenantId = tenantOf(c.get('principal'));
    const { limit, cursor } = c.req.valid('query');
    const before = decodeCursor(cursor);
    const db = c.get('db');
    const rows = await db
      .select()
      .from(subjects)
      .where(and(eq(subjects.tenantId, tenantId), isNull(subjects.deletedAt), before ? lt(subjects.id, before) : undefined))
      .orderBy(desc(subjects.id))
      .limit(limit + 1);
    const { items, nextCursor } = page(rows, limit);
    const images = await imagesOf(db, items.map((s) => s.id));
    return c.json({ data: items.map((s) => presentSubject(s, images.filter((i) => i.subjectId === s.id))), next_cursor: nextCursor }, 200);
  });

  app.openapi(get, async (c) => {
    const db = c.get('db');
    const subject = await findSubject(db, tenantOf(c.get('principal')), c.req.valid('param').id);
    return c.json(presentSubject(subject, await imagesOf(db, [subject.id])), 200);
  });

  app.openapi(remove, async (c) => {
    const kept = new Set(c.req.valid('query').keep?.split(',') ?? []);
    const keep = { weights: kept.has('weights'), generations: kept.has('generations') };
    await eraseSubject(c.get('db'), c.env, c.executionCtx, tenantOf(c.get('principal')), c.req.valid('param').id, keep);
    return c.body(null, 204);
  });

  app.openapi(getImage, async (c) => {
    const db = c.get('db');
    const { id, image_id } = c.req.valid('param');
    const subject = await findSubject(db, tenantOf(c.get('principal')), id);
    const [image] = await db
      .select()
      .from(subjectImages)
      .where(and(eq(subjectImages.id, image_id), eq(subjectImages.subjectId, subject.id), eq(subjectImages.status, 'stored')));
    if (!image) throw notFound('image', image_id);
    const object = await c.env.BUCKET.get(image.r2Key);
    if (!object) throw notFound('image', image_id);
    return c.body(object.body, 200, { 'content-type': image.contentType, 'content-length': String(image.byteSize), 'cache-control': 'private, max-age=3600' });
  });

  return app;
}
