CREATE TYPE "public"."weights_source" AS ENUM('personalization', 'import');--> statement-breakpoint
ALTER TABLE "weights" ALTER COLUMN "job_id" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "weights" ADD COLUMN "source" "weights_source" DEFAULT 'personalization' NOT NULL;--> statement-breakpoint
ALTER TABLE "weights" ADD CONSTRAINT "weights_personalization_job_check" CHECK ("weights"."source" <> 'personalization' OR "weights"."job_id" IS NOT NULL);