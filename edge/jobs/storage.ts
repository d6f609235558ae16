// R2 object keys. Tenant first, so one prefix holds everything a tenant owns; deterministic per job, so a retried
// store of the same result overwrites instead of leaking objects.
import type { WeightDtype, WeightFormat } from '../../contract/index.ts';

const EXTENSIONS: Record<string, string> = { 'image/jpeg': 'jpg', 'image/png': 'png', 'image/webp': 'webp' };

export const r2Keys = {
  subjectImage: (tenantId: string, subjectId: string, imageId: string, contentType: string) =>
    `tenants/${tenantId}/subjects/${subjectId}/${imageId}.${EXTENSIONS[contentType] ?? 'bin'}`,
  weightFile: (tenantId: string, weightsId: string, format: WeightFormat, dtype: WeightDtype) =>
    `tenants/${tenantId}/weights/${weightsId}/${format}-${dtype}.safetensors`,
  generationImage: (tenantId: string, jobId: string, index: number) =>
    `tenants/${tenantId}/generations/${jobId}/${index}.png`,
};
