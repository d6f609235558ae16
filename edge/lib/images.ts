// Uploaded images are identified by their magic bytes, not by the declared type, and their size is read from the
// header without decoding (the edge never decodes pixels; the runner does, with pixel limits).

export type ImageType = 'image/jpeg' | 'image/png' | 'image/webp';
/** `orientation`: the EXIF orientation tag (1–8) when the header carries one (JPEG APP1); 5–8 turn the image on its side. */
export type ImageInfo = { contentType: ImageType; width: number; height: number; orientation?: number };
export type ImageProbe = { ok: true; info: ImageInfo } | { ok: false; reason: string };

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(bytes: Uint8Array, prefix: readonly number[], offset = 0): boolean {
  return prefix.every((b, i) => bytes[offset + i] === b);
}

function ascii(bytes: Uint8Array, offset: number, length: number): string {
  return String.fromCharCode(...bytes.subarray(offset, offset + length));
}

function probePng(bytes: Uint8Array, view: DataView): ImageProbe {
  // The first chunk must be IHDR: width and height are big-endian u32 at 16 and 20 (PNG spec §11.2.2).
  if (bytes.length < 24 || ascii(bytes, 12, 4) !== 'IHDR') return { ok: false, reason: 'PNG without IHDR header' };
  return { ok: true, info: { contentType: 'image/png', width: view.getUint32(16), height: view.getUint32(20) } };
}

function isStartOfFrame(marker: number): boolean {
  // SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not frames.
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

/**
 * The orientation tag (0x0112) of an APP1 Exif segment starting at `start` (after the length), or undefined. TIFF
 * header: byte order "II"/"MM", 42, offset of IFD0; each IFD entry is 12 bytes (tag, type, count, value).
 */
function exifOrientation(bytes: Uint8Array, view: DataView, start: number, end: number): number | undefined {
  if (end - start < 14 || ascii(bytes, start, 6) !== 'Exif\0\0') return undefined;
  const tiff = start + 6;
  const little = ascii(bytes, tiff, 2) === 'II';
  const u16 = (at: number) => (at + 2 <= end ? view.getUint16(at, little) : undefined);
  const u32 = (at: number) => (at + 4 <= end ? view.getUint32(at, little) : undefined);
  const ifd = u32(tiff + 4);
  if (ifd === undefined) return undefined;
  const entries = u16(tiff + ifd) ?? 0;
  for (let i = 0; i < entries; i++) {
    const entry = tiff + ifd + 2 + i * 12;
    if (u16(entry) === 0x0112) {
      const value = u16(entry + 8);
      return value !== undefined && value >= 1 && value <= 8 ? value : undefined;
    }
  }
  return undefined;
}

/** The image's size as shown (and as the runner decodes it): EXIF orientations 5–8 swap width and height. */
export function uprightSize(info: ImageInfo): { width: number; height: number } {
  return info.orientation !== undefined && info.orientation >= 5 ? { width: info.height, height: info.width } : { width: info.width, height: info.height };
}

function probeJpeg(bytes: Uint8Array, view: DataView): ImageProbe {
  let offset = 2;
  let orientation: number | undefined;
  while (offset + 4 <= bytes.length) {
    if (bytes[offset] !== 0xff) return { ok: false, reason: 'JPEG with a corrupt segment header' };
    const marker = bytes[offset + 1] ?? 0;
    if (marker === 0xff) {
      offset += 1; // fill byte
      continue;
    }
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      offset += 2; // markers without a length
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) break; // end of image or start of scan before any frame header
    const length = view.getUint16(offset + 2);
    if (length < 2) return { ok: false, reason: 'JPEG with a corrupt segment length' };
    if (marker === 0xe1 && orientation === undefined) orientation = exifOrientation(bytes, view, offset + 4, Math.min(bytes.length, offset + 2 + length));
    if (isStartOfFrame(marker)) {
      if (offset + 9 > bytes.length) break;
      return {
        ok: true,
        info: { contentType: 'image/jpeg', height: view.getUint16(offset + 5), width: view.getUint16(offset + 7), ...(orientation ? { orientation } : {}) },
      };
    }
    offset += 2 + length;
  }
  return { ok: false, reason: 'JPEG without a frame header (truncated?)' };
}

function probeWebp(bytes: Uint8Array, view: DataView): ImageProbe {
  const chunk = ascii(bytes, 12, 4);
  if (chunk === 'VP8 ' && bytes.length >= 30) {
    // Lossy: a key frame starts with 9D 01 2A, then 14-bit width and height (RFC 6386 §9.1).
    if (!startsWith(bytes, [0x9d, 0x01, 0x2a], 23)) return { ok: false, reason: 'WebP (VP8) without a key frame' };
    return {
      ok: true,
      info: { contentType: 'image/webp', width: view.getUint16(26, true) & 0x3fff, height: view.getUint16(28, true) & 0x3fff },
    };
  }
  if (chunk === 'VP8L' && bytes.length >= 25) {
    // Lossless: signature 0x2F, then 14-bit width-1 and height-1, little-endian bit packed.
    if (bytes[20] !== 0x2f) return { ok: false, reason: 'WebP (VP8L) with a bad signature' };
    const bits = view.getUint32(21, true);
    return { ok: true, info: { contentType: 'image/webp', width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1 } };
  }
  if (chunk === 'VP8X' && bytes.length >= 30) {
    // Extended: 24-bit canvas width-1 and height-1 at 24 and 27.
    const u24 = (at: number) => (bytes[at] ?? 0) | ((bytes[at + 1] ?? 0) << 8) | ((bytes[at + 2] ?? 0) << 16);
    return { ok: true, info: { contentType: 'image/webp', width: u24(24) + 1, height: u24(27) + 1 } };
  }
  return { ok: false, reason: 'WebP without a VP8, VP8L or VP8X chunk' };
}

export function probeImage(bytes: Uint8Array): ImageProbe {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (startsWith(bytes, PNG_SIGNATURE)) return probePng(bytes, view);
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return probeJpeg(bytes, view);
  if (bytes.length >= 16 && ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 4) === 'WEBP') return probeWebp(bytes, view);
  return { ok: false, reason: 'not a JPEG, PNG or WebP image' };
}
