package main

import (
	"fmt"

	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	"go.temporal.io/server/tools/common/schema"
	sqltool "go.temporal.io/server/tools/sql"
)

// pluginName is Temporal's PostgreSQL plugin (lib/pq), for the store and
// for visibility alike.
const pluginName = postgresql.PluginName

// The embedded schemas (go.temporal.io/server/schema) temporal-sql-tool's
// --schema-name takes for PostgreSQL 12 and later.
const (
	storeSchema      = "postgresql/v12/temporal"
	visibilitySchema = "postgresql/v12/visibility"
)

// defaultDatabase is the database temporal-sql-tool connects to in order to
// create another (its --defaultdb for postgres).
const defaultDatabase = "postgres"

// setupSchema does what these do for the database conf names:
//
//	temporal-sql-tool create-database
//	temporal-sql-tool setup-schema -v 0.0
//	temporal-sql-tool update-schema --schema-name <name>
//
// The database and the version tables are set up only when missing, so
// running it again, as a restarted server does, changes nothing.
func setupSchema(conf *config.SQL, name string, logger log.Logger) error {
	create := *conf
	if err := sqltool.DoCreateDatabase(&create, defaultDatabase, logger); err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	conn, err := sqltool.NewConnection(conf, logger)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ReadSchemaVersion(); err != nil {
		setup := schema.NewSetupSchemaTask(conn, &schema.SetupConfig{InitialVersion: "0.0"}, logger)
		if err := setup.Run(); err != nil {
			return fmt.Errorf("setup-schema -v 0.0: %w", err)
		}
	}
	update := schema.NewUpdateSchemaTask(conn, &schema.UpdateConfig{DBName: conf.DatabaseName, SchemaName: name}, logger)
	if err := update.Run(); err != nil {
		return fmt.Errorf("update-schema --schema-name %s: %w", name, err)
	}
	return nil
}
