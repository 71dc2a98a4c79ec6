# The desired schema: the single source of truth, in Atlas HCL.
# Push it to the local database:   atlas schema apply --env local
# Version a change as a migration:  atlas migrate diff NAME --env local
# Columns are NOT NULL unless they say `null = true`.

schema "public" {
  comment = "standard public schema"
}

enum "user_role" {
  schema = schema.public
  values = ["user", "admin"]
}

table "users" {
  schema = schema.public
  column "id" {
    type    = uuid
    default = sql("gen_random_uuid()")
  }
  column "email" {
    type = varchar(255)
  }
  column "name" {
    type = varchar(255)
  }
  column "password_hash" {
    type = varchar(255)
    null = true
  }
  column "role" {
    type    = enum.user_role
    default = "user"
    null    = true
  }
  column "email_verified" {
    type    = boolean
    default = false
    null    = true
  }
  column "created_at" {
    type    = timestamptz
    default = sql("now()")
  }
  column "updated_at" {
    type    = timestamptz
    default = sql("now()")
  }
  primary_key {
    columns = [column.id]
  }
  index "users_email_key" {
    unique  = true
    columns = [column.email]
  }
}

table "projects" {
  schema = schema.public
  column "id" {
    type    = uuid
    default = sql("gen_random_uuid()")
  }
  column "owner_id" {
    type = uuid
  }
  column "name" {
    type = varchar(255)
  }
  column "description" {
    type = text
    null = true
  }
  column "status" {
    type    = varchar(50)
    default = "active"
    null    = true
  }
  column "created_at" {
    type    = timestamptz
    default = sql("now()")
  }
  column "updated_at" {
    type    = timestamptz
    default = sql("now()")
  }
  primary_key {
    columns = [column.id]
  }
  foreign_key "projects_owner_id_fkey" {
    columns     = [column.owner_id]
    ref_columns = [table.users.column.id]
    on_delete   = CASCADE
    on_update   = NO_ACTION
  }
  index "idx_projects_owner_id" {
    columns = [column.owner_id]
  }
  index "idx_projects_status" {
    columns = [column.status]
  }
}

table "ai_usage_log" {
  schema = schema.public
  column "id" {
    type    = uuid
    default = sql("gen_random_uuid()")
  }
  column "user_id" {
    type = uuid
  }
  column "model" {
    type = varchar(100)
  }
  column "tokens_used" {
    type = integer
  }
  column "estimated_cost" {
    type = numeric(12, 6)
    null = true
  }
  column "endpoint" {
    type = varchar(255)
    null = true
  }
  column "created_at" {
    type    = timestamptz
    default = sql("now()")
  }
  primary_key {
    columns = [column.id]
  }
  foreign_key "ai_usage_log_user_id_fkey" {
    columns     = [column.user_id]
    ref_columns = [table.users.column.id]
    on_delete   = CASCADE
    on_update   = NO_ACTION
  }
  index "idx_ai_usage_user_id" {
    columns = [column.user_id]
  }
  index "idx_ai_usage_created" {
    columns = [column.created_at]
  }
}

# pgvector embeddings, ready to enable. Enabling needs the `vector` extension in every database
# the schema reaches: pydb's local server has it; elsewhere (Neon included) version it first with
# `atlas migrate new enable_vector`, write `CREATE EXTENSION IF NOT EXISTS vector;` in that file,
# run `atlas migrate hash --env local`, then uncomment this table and run `atlas migrate diff add_embeddings --env local`.
#
# table "embeddings" {
#   schema = schema.public
#   column "id" {
#     type    = uuid
#     default = sql("gen_random_uuid()")
#   }
#   column "user_id" {
#     type = uuid
#   }
#   column "content" {
#     type = text
#   }
#   column "embedding" {
#     type = sql("vector(1536)")
#   }
#   column "created_at" {
#     type    = timestamptz
#     default = sql("now()")
#   }
#   primary_key {
#     columns = [column.id]
#   }
#   foreign_key "embeddings_user_id_fkey" {
#     columns     = [column.user_id]
#     ref_columns = [table.users.column.id]
#     on_delete   = CASCADE
#     on_update   = NO_ACTION
#   }
#   index "idx_embeddings_user_id" {
#     columns = [column.user_id]
#   }
# }
