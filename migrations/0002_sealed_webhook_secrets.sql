ALTER TABLE "webhook_secrets" ALTER COLUMN "secret" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "webhook_secrets" ADD COLUMN "sealed_secret" text;--> statement-breakpoint
ALTER TABLE "webhook_secrets" ADD COLUMN "key_id" text;--> statement-breakpoint
ALTER TABLE "webhook_secrets" ADD CONSTRAINT "webhook_secrets_one_form_check" CHECK (("webhook_secrets"."secret" IS NULL) <> ("webhook_secrets"."sealed_secret" IS NULL) AND ("webhook_secrets"."sealed_secret" IS NULL) = ("webhook_secrets"."key_id" IS NULL));