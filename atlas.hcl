# Atlas project file. Run Atlas as `atlas ...` after `. .venv/bin/activate`: .venv/bin/atlas is
# pydb's launcher, which starts the local database when an env needs it and passes the URLs below
# through the environment, then runs the Atlas binary built from tools/atlas.
#
#   atlas schema apply --env local            push schema.hcl to the local database
#   atlas migrate diff NAME --env local       write migrations/<time>_NAME.sql from schema.hcl
#   atlas migrate lint --env ci --latest 1    CI gate: fail on destructive or data-dependent changes
#   atlas migrate apply --env prod            deploy migrations/ to DATABASE_URL
#   atlas schema apply --env dev              push schema.hcl to DATABASE_URL (a Neon branch); a plan
#                                             that drops a schema, table or column is refused (nothing
#                                             applied) unless you add --var allow_drop=true
#
# PYDB_LOCAL_URL, PYDB_LOCAL_DEV_URL  the local server's application and (empty) dev databases
# PYDB_DEV_URL                        ATLAS_DEV_URL if set, else the local dev database
# PYDB_TARGET_URL                     DATABASE_URL, scoped to the public schema for Atlas.
#                                     On Neon this must be the direct host, not the -pooler one.

# Opt-in for destructive pushes to the shared `dev` database: --var allow_drop=true.
variable "allow_drop" {
  type    = bool
  default = false
}

locals {
  schema_src = "file://schema.hcl"
  dev_url    = getenv("PYDB_DEV_URL")
  target_url = getenv("PYDB_TARGET_URL")
}

# Migration lint policy for every env (this Atlas applies the global block to each env):
#   destructive  DS101 drop schema, DS102 drop table, DS103 drop column                     error
#   data_depend  MF101 unique index on existing column, MF102 index made unique,
#                MF103 NOT NULL column without default, MF104 column made NOT NULL        error
#   incompatible BC101 table renamed, BC102 column renamed                                 error
#   condrop      CD101 foreign key dropped, its columns kept                             warning
#   concurrent_index PG101/PG102 index built or dropped without CONCURRENTLY,
#                PG103 CONCURRENTLY without `-- atlas:txmode none`                       warning
# `pydb lint` adds squawk's lock-risk rules (type changes, NOT VALID constraints, ...) as errors.
# Skip one statement with `-- atlas:nolint DS103` on the line above it.
lint {
  destructive {
    error = true
  }
  data_depend {
    error = true
  }
  incompatible {
    error = true
  }
}

env "local" {
  url = getenv("PYDB_LOCAL_URL")
  dev = getenv("PYDB_LOCAL_DEV_URL")
  src = local.schema_src
  migration {
    dir              = "file://migrations"
    revisions_schema = "atlas_schema_revisions"
  }
}

# A shared database (a Neon branch): `schema apply` never drops a schema, table or column here
# unless asked with --var allow_drop=true. The `atlas` launcher refuses such a plan before anything
# runs; the skip policy below is the second line, for the Atlas binary run on its own (it then
# applies the rest and holds the drops back).
env "dev" {
  url = local.target_url
  dev = local.dev_url
  src = local.schema_src
  diff {
    skip {
      drop_schema = !var.allow_drop
      drop_table  = !var.allow_drop
      drop_column = !var.allow_drop
    }
  }
  migration {
    dir              = "file://migrations"
    revisions_schema = "atlas_schema_revisions"
  }
}

env "ci" {
  dev = local.dev_url
  src = local.schema_src
  migration {
    dir              = "file://migrations"
    revisions_schema = "atlas_schema_revisions"
  }
}

env "prod" {
  url = local.target_url
  migration {
    dir              = "file://migrations"
    revisions_schema = "atlas_schema_revisions"
  }
}
