package main

import (
	"context"
	"os/user"
	"strings"

	"github.com/mcpauth/mcpauth/store"
	"github.com/mcpauth/mcpauth/store/sqlstore/pgnotify"
)

// The environment that names the CLI in the audit trail and chooses where
// it announces key changes (docs/cli.md).
const (
	// envActor overrides the actor of the CLI's key changes; default
	// "cli:<OS user>".
	envActor = "MCPAUTH_ACTOR"
	// envInstance overrides the instance name of its audit events; default
	// audit.DefaultInstance() (host name and process ID).
	envInstance = "MCPAUTH_INSTANCE"
	// envChannel is the PostgreSQL LISTEN/NOTIFY channel the servers
	// listen on (pgnotify.Options.Channel); default pgnotify.DefaultChannel.
	// "off" publishes nothing: servers then see changes at their poll.
	envChannel = "MCPAUTH_CHANGES_CHANNEL"
)

// actor is who the CLI's key changes are audited as.
func (a *app) actor() string {
	if s := strings.TrimSpace(a.env(envActor)); s != "" {
		return s
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli"
}

// changePublisher returns the channel key changes are announced on: with a
// PostgreSQL database, NOTIFY on the servers' channel, so that their caches
// drop a changed key within milliseconds; nil for SQLite (one process) or
// with MCPAUTH_CHANGES_CHANNEL=off. It never fails a command: without it the
// servers' poll still sees the change within about a second.
func (a *app) changePublisher(r *resources) (store.ChangePublisher, func()) {
	channel := strings.TrimSpace(a.env(envChannel))
	if !isPostgresURL(strings.TrimSpace(a.g.db)) || channel == "off" {
		return nil, func() {}
	}
	f, err := pgnotify.New(a.ctx, strings.TrimSpace(a.g.db), &pgnotify.Options{Channel: channel})
	if err != nil {
		return nil, func() {}
	}
	return f, func() { _ = f.Close(context.Background()) }
}
