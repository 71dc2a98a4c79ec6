# Atlas project file. Run Atlas as `atlas ...` after `. .venv/bin/activate`: .venv/bin/atlas is
# pydb's launcher, which starts the local database when an env needs it and passes the URLs below
# through the environment, then runs the Atlas binary built from tools/atlas.
#
#   atlas schema apply --env local            push schema.hcl to the local database
#   atlas migrate diff NAME --env local       write migrations/<time>_NAME.sql from schema.hcl
#   atlas migrate lint --env ci --latest 1    CI gate: fail on destructive or data-dependent changes
#   atlas migrate apply --env prod            deploy migrations/ to DATABASE_URL
#
# PYDB_LOCAL_URL, PYDB_LOCAL_DEV_URL  the local server's application and (empty) dev databases
# PYDB_DEV_URL                        ATLAS_DEV_URL if set, else the local dev database
# PYDB_TARGET_URL                     DATABASE_URL, scoped to the public schema for Atlas.
#                                     On Neon this must be the direct host, not the -pooler one.

locals {
  schema_src = "file://schema.hcl"
  dev_url    = getenv("PYDB_DEV_URL")
  target_url = getenv("PYDB_TARGET_URL")
}

# Migration lint policy for every env: destructive (DS1xx), data-dependent (MF1xx) and
# backward-incompatible (BC1xx) changes are errors, not warnings.
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

env "dev" {
  url = local.target_url
  dev = local.dev_url
  src = local.schema_src
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
