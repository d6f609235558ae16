// Messages on the `jobs` Queue: "dispatch this job". The job's truth stays in Postgres; a message only says "look".
import { z } from 'zod';

export const JobMessage = z.object({ job_id: z.string().min(1) });
export type JobMessage = z.infer<typeof JobMessage>;
