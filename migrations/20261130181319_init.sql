-- Create enum type "user_role"
CREATE TYPE "user_role" AS ENUM ('user', 'admin');
-- Create "users" table
CREATE TABLE "users" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "email" character varying(255) NOT NULL, "name" character varying(255) NOT NULL, "password_hash" character varying(255) NULL, "role" "user_role" NULL DEFAULT 'user', "email_verified" boolean NULL DEFAULT false, "created_at" timestamptz NOT NULL DEFAULT now(), "updated_at" timestamptz NOT NULL DEFAULT now(), PRIMARY KEY ("id"));
-- Create index "users_email_key" to table: "users"
CREATE UNIQUE INDEX "users_email_key" ON "users" ("email");
-- Create "ai_usage_log" table
CREATE TABLE "ai_usage_log" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "user_id" uuid NOT NULL, "model" character varying(100) NOT NULL, "tokens_used" integer NOT NULL, "estimated_cost" numeric(12,6) NULL, "endpoint" character varying(255) NULL, "created_at" timestamptz NOT NULL DEFAULT now(), PRIMARY KEY ("id"), CONSTRAINT "ai_usage_log_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE CASCADE);
-- Create index "idx_ai_usage_created" to table: "ai_usage_log"
CREATE INDEX "idx_ai_usage_created" ON "ai_usage_log" ("created_at");
-- Create index "idx_ai_usage_user_id" to table: "ai_usage_log"
CREATE INDEX "idx_ai_usage_user_id" ON "ai_usage_log" ("user_id");
-- Create "projects" table
CREATE TABLE "projects" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "owner_id" uuid NOT NULL, "name" character varying(255) NOT NULL, "description" text NULL, "status" character varying(50) NULL DEFAULT 'active', "created_at" timestamptz NOT NULL DEFAULT now(), "updated_at" timestamptz NOT NULL DEFAULT now(), PRIMARY KEY ("id"), CONSTRAINT "projects_owner_id_fkey" FOREIGN KEY ("owner_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE CASCADE);
-- Create index "idx_projects_owner_id" to table: "projects"
CREATE INDEX "idx_projects_owner_id" ON "projects" ("owner_id");
-- Create index "idx_projects_status" to table: "projects"
CREATE INDEX "idx_projects_status" ON "projects" ("status");
