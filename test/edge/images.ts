// Tiny but well-formed image files for upload tests: the edge reads headers only, so headers are what matter.
export function png(width: number, height: number, extra = 0): Uint8Array {
  const bytes = new Uint8Array(33 + extra);
  bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
  const view = new DataView(bytes.buffer);
  view.setUint32(16, width);
  view.setUint32(20, height);
  bytes.set([8, 6, 0, 0, 0], 24);
  return bytes;
}

/** `orientation`: an EXIF APP1 segment (big-endian TIFF, one IFD0 entry) with that orientation tag, as cameras write. */
export function jpeg(width: number, height: number, orientation?: number): Uint8Array {
  const app0 = [0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 1, 1, 0, 0, 1, 0, 1, 0, 0];
  const tiff = [0x4d, 0x4d, 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, orientation ?? 1, 0, 0, 0, 0, 0, 0];
  const app1 = orientation === undefined ? [] : [0xff, 0xe1, 0, 2 + 6 + tiff.length, 0x45, 0x78, 0x69, 0x66, 0, 0, ...tiff];
  const sof0 = [0xff, 0xc0, 0x00, 0x11, 0x08, height >> 8, height & 255, width >> 8, width & 255, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1];
  return new Uint8Array([0xff, 0xd8, ...app0, ...app1, ...sof0, 0xff, 0xd9]);
}

export function webp(width: number, height: number): Uint8Array {
  const bytes = new Uint8Array(30);
  const ascii = (text: string, at: number) => bytes.set([...text].map((c) => c.charCodeAt(0)), at);
  ascii('RIFF', 0);
  new DataView(bytes.buffer).setUint32(4, 22, true);
  ascii('WEBP', 8);
  ascii('VP8X', 12);
  new DataView(bytes.buffer).setUint32(16, 10, true);
  const u24 = (value: number, at: number) => bytes.set([value & 255, (value >> 8) & 255, (value >> 16) & 255], at);
  u24(width - 1, 24);
  u24(height - 1, 27);
  return bytes;
}

export function file(bytes: Uint8Array, name: string, type = 'application/octet-stream'): File {
  return new File([bytes], name, { type });
}

export function form(files: File[], fields: Record<string, string> = {}): FormData {
  const data = new FormData();
  for (const [k, v] of Object.entries(fields)) data.append(k, v);
  for (const f of files) data.append('images', f);
  return data;
}
