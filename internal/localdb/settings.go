package localdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Settings are server settings that must match across the nodes of a
// cluster (compared by the caller) or that the applier depends on.
type Settings struct {
	Version               string
	AutoincLockMode       int
	LowerCaseTableNames   int
	CharacterSetServer    string
	CollationServer       string
	ExplicitDefaultsForTS string
	DefaultStorageEngine  string
	SystemTimeZone        string
	TimeZone              string
	SQLMode               string
}

// Settings reads the server settings (uncached).
func (db *DB) Settings(ctx context.Context) (Settings, error) {
	var s Settings
	row := db.admin.QueryRowContext(ctx, `SELECT @@version, @@innodb_autoinc_lock_mode, @@lower_case_table_names,
  @@character_set_server, @@collation_server, @@explicit_defaults_for_timestamp,
  @@default_storage_engine, @@system_time_zone, @@global.time_zone, @@global.sql_mode`)
	if err := row.Scan(&s.Version, &s.AutoincLockMode, &s.LowerCaseTableNames, &s.CharacterSetServer,
		&s.CollationServer, &s.ExplicitDefaultsForTS, &s.DefaultStorageEngine, &s.SystemTimeZone, &s.TimeZone, &s.SQLMode); err != nil {
		return Settings{}, fmt.Errorf("localdb: read server settings: %w", err)
	}
	return s, nil
}

// CheckSettings refuses server settings that break deterministic
// statement replication. The error says what to change and where; warnings
// about settings that are tolerated are logged.
func (db *DB) CheckSettings(ctx context.Context) error {
	s, err := db.Settings(ctx)
	if err != nil {
		return err
	}
	var problems []string
	if s.AutoincLockMode != 0 && s.AutoincLockMode != 1 {
		problems = append(problems, fmt.Sprintf("innodb_autoinc_lock_mode is %d: multi-row inserts would get different auto-increment ids on different nodes; set innodb_autoinc_lock_mode=1 in the server config ([mariadbd] or [mysqld] section of my.cnf, or --innodb-autoinc-lock-mode=1) and restart the server", s.AutoincLockMode))
	}
	if !strings.EqualFold(s.DefaultStorageEngine, "InnoDB") {
		db.log.Warn("default_storage_engine is not InnoDB: tables created without ENGINE= are not transactional, and the applier's exactly-once rule needs InnoDB", "default_storage_engine", s.DefaultStorageEngine)
	}
	if s.TimeZone == "SYSTEM" {
		db.log.Info("server time_zone is SYSTEM: every node's OS time zone must match unless sessions set time_zone", "system_time_zone", s.SystemTimeZone)
	}
	db.mu.Lock()
	db.settings = &s
	db.mu.Unlock()
	if len(problems) > 0 {
		return errors.New("localdb: the local database server's settings break replication: " + strings.Join(problems, "; "))
	}
	return nil
}
