package main

import "fmt"

func (a *app) migrate(name string, args []string) error {
	fs := a.flagSet(name, "", `Creates or upgrades the key tables and the audit tables in the database
named by --db, with the table names prefixed by --table-prefix. A SQLite
file is created if it does not exist. Safe to run again and from several
processes at once: migrations already applied are skipped.`)
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	r, err := a.open(true)
	if err != nil {
		return err
	}
	if err := r.keys.Migrate(a.ctx); err != nil {
		return fmt.Errorf("migrate key tables: %w", err)
	}
	if err := r.audit.Migrate(a.ctx); err != nil {
		return fmt.Errorf("migrate audit tables: %w", err)
	}
	tables := append([]string{r.keys.KeysTable()}, r.audit.Tables()...)
	tables = append(tables, r.keys.MigrationsTable())
	if a.g.json {
		return writeJSON(a.stdout, map[string]any{"dialect": r.dialect.String(), "table_prefix": a.g.tablePrefix, "tables": tables})
	}
	fmt.Fprintf(a.stdout, "%s is up to date (%s; tables", r.where, r.dialect)
	for i, t := range tables {
		sep := ","
		if i == 0 {
			sep = ""
		}
		fmt.Fprintf(a.stdout, "%s %s", sep, t)
	}
	fmt.Fprintln(a.stdout, ")")
	return nil
}
