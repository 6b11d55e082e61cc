package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/go-sql-driver/mysql"

	sqlfiles "github.com/pvekeep/pvekeep/sql"
)

// knownMigrations are the versions of the migrations embedded in this
// binary (the leading number of each migrations/*.sql), read once.
var knownMigrations = sync.OnceValues(func() (map[int64]bool, error) {
	entries, err := fs.ReadDir(sqlfiles.Migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("list embedded migrations: %w", err)
	}
	out := make(map[int64]bool, len(entries))
	for _, e := range entries {
		name := e.Name()
		if path.Ext(name) != ".sql" {
			continue
		}
		num, _, _ := strings.Cut(name, "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("embedded migration %s: name does not start with a version number", name)
		}
		out[v] = true
	}
	return out, nil
})

// EnsureMigrated brings the plugin's tables up to date on first use, so a
// panel needs no `pvekeep migrate` step: when they already are (the
// common case, paid by every process the panel spawns) it costs one
// query on the store's own pool; when they are behind (or absent) it runs
// the embedded migrations exactly as Migrate does, under the migration
// lock, so any number of processes starting at once on an empty database
// all succeed and the migrations run once. migrated reports whether this
// call found work to do. A database ahead of this binary (a newer release
// migrated it) is left alone.
func (s *Store) EnsureMigrated(ctx context.Context) (migrated bool, err error) {
	known, err := knownMigrations()
	if err != nil {
		return false, err
	}
	var applied, newest int64
	err = s.db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MAX(version_id), 0) FROM `+versionTable+
		` WHERE version_id > 0`).Scan(&applied, &newest)
	var me *mysql.MySQLError
	switch {
	case errors.As(err, &me) && me.Number == 1146: // no version table: a fresh database
	case err != nil:
		return false, fmt.Errorf("read migration version: %w", classify(err))
	case applied >= int64(len(known)) && known[newest]:
		return false, nil
	case newest > maxVersion(known):
		s.logger.Warn("the database was migrated by a newer pvekeep; leaving it as it is",
			"database_version", newest, "binary_version", maxVersion(known))
		return false, nil
	}
	s.logger.Info("database tables are behind this binary; migrating", "applied", applied, "known", len(known))
	if err := withProviderConfig(ctx, s.cfg.Clone(), s.logger, migrateUp(ctx, s.logger)); err != nil {
		return false, err
	}
	return true, nil
}

func maxVersion(known map[int64]bool) int64 {
	var m int64
	for v := range known {
		m = max(m, v)
	}
	return m
}
