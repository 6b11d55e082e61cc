// Package sqlfiles embeds the plugin's SQL: the goose migrations that create
// and update the mod_pvekeep_* tables, and the WHMCS table definitions the
// tests and `pvekeep demo` load into a throwaway database.
//
// Conventions for migrations (never edit a released one; add a new file):
//   - one table (or one change) per file, numbered 00001_…, so a failed DDL
//     statement leaves a clear version behind (MySQL DDL is not transactional);
//   - InnoDB, utf8mb4 / utf8mb4_unicode_ci;
//   - every time is DATETIME(6) holding UTC, written by the caller's clock;
//   - no foreign keys to WHMCS tables (their ids are int(10) and WHMCS deletes
//     rows without knowing about us); the plugin's tables reference each other
//     by id only.
package sqlfiles

import "embed"

// Migrations holds migrations/*.sql for goose (dialect mysql).
//
//go:embed migrations/*.sql
var Migrations embed.FS

// WHMCSSchema is the CREATE TABLE script of the WHMCS 8.x tables the plugin
// reads (a copy of a real installation's schema, no rows). It contains
// several statements: run it on a connection with multiStatements enabled.
//
//go:embed testdata/whmcs_schema.sql
var WHMCSSchema string
