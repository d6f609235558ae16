CREATE TYPE "public"."api_key_role" AS ENUM('tenant', 'admin');--> statement-breakpoint
CREATE TYPE "public"."subject_image_status" AS ENUM('pending', 'stored');--> statement-breakpoint
CREATE TYPE "public"."job_kind" AS ENUM('personalization', 'generation');--> statement-breakpoint
CREATE TYPE "public"."job_status" AS ENUM('queued', 'dispatched', 'running', 'succeeded', 'failed', 'canceled');--> statement-breakpoint
CREATE TABLE "api_keys" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text,
	"role" "api_key_role" NOT NULL,
	"name" text DEFAULT '' NOT NULL,
	"key_hash" text NOT NULL,
	"display_prefix" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone,
	"last_used_at" timestamp with time zone,
	CONSTRAINT "api_keys_tenant_role_check" CHECK ("api_keys"."role" = 'admin' OR "api_keys"."tenant_id" IS NOT NULL)
);
--> statement-breakpoint
CREATE TABLE "tenants" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "subject_images" (
	"id" text PRIMARY KEY NOT NULL,
	"subject_id" text NOT NULL,
	"tenant_id" text NOT NULL,
	"status" "subject_image_status" DEFAULT 'pending' NOT NULL,
	"r2_key" text NOT NULL,
	"content_type" text NOT NULL,
	"byte_size" bigint NOT NULL,
	"width" integer NOT NULL,
	"height" integer NOT NULL,
	"sha256" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "subjects" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"name" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"deleted_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "jobs" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"kind" "job_kind" NOT NULL,
	"status" "job_status" DEFAULT 'queued' NOT NULL,
	"subject_id" text,
	"weights_id" text,
	"method" text,
	"params" jsonb NOT NULL,
	"progress_step" integer DEFAULT 0 NOT NULL,
	"progress_total" integer,
	"attempts" integer DEFAULT 0 NOT NULL,
	"max_attempts" integer NOT NULL,
	"lease_expires_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"dispatched_at" timestamp with time zone,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"error_code" text,
	"error_message" text,
	"idempotency_key" text,
	"request_hash" text,
	"webhook_url" text,
	"webhook_events" jsonb
);
--> statement-breakpoint
CREATE TABLE "runner_events" (
	"event_id" text PRIMARY KEY NOT NULL,
	"job_id" text NOT NULL,
	"type" text NOT NULL,
	"attempt" integer NOT NULL,
	"outcome" text NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "weight_files" (
	"weights_id" text NOT NULL,
	"format" text NOT NULL,
	"dtype" text NOT NULL,
	"r2_key" text NOT NULL,
	"byte_size" bigint NOT NULL,
	"sha256" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "weights" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"subject_id" text,
	"job_id" text NOT NULL,
	"method" text NOT NULL,
	"base_model_id" text NOT NULL,
	"rank" integer NOT NULL,
	"layers" jsonb NOT NULL,
	"num_parameters" integer NOT NULL,
	"total_bytes" bigint NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"deleted_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "generation_images" (
	"id" text PRIMARY KEY NOT NULL,
	"job_id" text NOT NULL,
	"tenant_id" text NOT NULL,
	"index" integer NOT NULL,
	"r2_key" text NOT NULL,
	"content_type" text NOT NULL,
	"width" integer NOT NULL,
	"height" integer NOT NULL,
	"seed" bigint NOT NULL,
	"byte_size" bigint NOT NULL,
	"sha256" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "idempotency_keys" (
	"tenant_id" text NOT NULL,
	"key" text NOT NULL,
	"route" text NOT NULL,
	"request_hash" text NOT NULL,
	"response_status" integer,
	"response_body" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "idempotency_keys_tenant_id_key_pk" PRIMARY KEY("tenant_id","key")
);
--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "subject_images" ADD CONSTRAINT "subject_images_subject_id_subjects_id_fk" FOREIGN KEY ("subject_id") REFERENCES "public"."subjects"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "subject_images" ADD CONSTRAINT "subject_images_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "subjects" ADD CONSTRAINT "subjects_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_subject_id_subjects_id_fk" FOREIGN KEY ("subject_id") REFERENCES "public"."subjects"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "runner_events" ADD CONSTRAINT "runner_events_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "weight_files" ADD CONSTRAINT "weight_files_weights_id_weights_id_fk" FOREIGN KEY ("weights_id") REFERENCES "public"."weights"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "weights" ADD CONSTRAINT "weights_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "weights" ADD CONSTRAINT "weights_subject_id_subjects_id_fk" FOREIGN KEY ("subject_id") REFERENCES "public"."subjects"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "weights" ADD CONSTRAINT "weights_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "generation_images" ADD CONSTRAINT "generation_images_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "generation_images" ADD CONSTRAINT "generation_images_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "idempotency_keys" ADD CONSTRAINT "idempotency_keys_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "api_keys_key_hash_idx" ON "api_keys" USING btree ("key_hash");--> statement-breakpoint
CREATE INDEX "api_keys_tenant_idx" ON "api_keys" USING btree ("tenant_id","id");--> statement-breakpoint
CREATE INDEX "subject_images_subject_idx" ON "subject_images" USING btree ("subject_id","id");--> statement-breakpoint
CREATE INDEX "subject_images_status_created_idx" ON "subject_images" USING btree ("status","created_at");--> statement-breakpoint
CREATE INDEX "subjects_tenant_id_idx" ON "subjects" USING btree ("tenant_id","id");--> statement-breakpoint
CREATE INDEX "jobs_tenant_kind_id_idx" ON "jobs" USING btree ("tenant_id","kind","id");--> statement-breakpoint
CREATE INDEX "jobs_weights_idx" ON "jobs" USING btree ("weights_id");--> statement-breakpoint
CREATE INDEX "jobs_live_lease_idx" ON "jobs" USING btree ("lease_expires_at") WHERE "jobs"."status" IN ('queued', 'dispatched', 'running');--> statement-breakpoint
CREATE UNIQUE INDEX "jobs_tenant_idempotency_idx" ON "jobs" USING btree ("tenant_id","kind","idempotency_key") WHERE "jobs"."idempotency_key" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "runner_events_job_idx" ON "runner_events" USING btree ("job_id");--> statement-breakpoint
CREATE UNIQUE INDEX "weight_files_pk_idx" ON "weight_files" USING btree ("weights_id","format","dtype");--> statement-breakpoint
CREATE INDEX "weights_tenant_id_idx" ON "weights" USING btree ("tenant_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "weights_job_idx" ON "weights" USING btree ("job_id");--> statement-breakpoint
CREATE INDEX "weights_subject_idx" ON "weights" USING btree ("subject_id");--> statement-breakpoint
CREATE INDEX "weights_created_idx" ON "weights" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "weights_method_idx" ON "weights" USING btree ("method","id");--> statement-breakpoint
CREATE UNIQUE INDEX "generation_images_job_index_idx" ON "generation_images" USING btree ("job_id","index");--> statement-breakpoint
CREATE INDEX "generation_images_tenant_idx" ON "generation_images" USING btree ("tenant_id","id");--> statement-breakpoint
CREATE INDEX "idempotency_keys_created_idx" ON "idempotency_keys" USING btree ("created_at");