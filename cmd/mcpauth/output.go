package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
)

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// normal returns k with its times in UTC, as the database gives them back.
func normal(k keyadmin.KeyInfo) keyadmin.KeyInfo {
	k.CreatedAt, k.ExpiresAt, k.RevokedAt, k.LastUsedAt = utc(k.CreatedAt), utc(k.ExpiresAt), utc(k.RevokedAt), utc(k.LastUsedAt)
	return k
}

func showTime(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.UTC().Format(time.RFC3339)
}

func showList(l []string) string {
	if len(l) == 0 {
		return "-"
	}
	return strings.Join(l, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printKey prints one key as a two-column table.
func printKey(w io.Writer, k keyadmin.KeyInfo) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name, value string) { fmt.Fprintf(tw, "%s\t%s\n", name, value) }
	row("ID", k.ID)
	row("User", k.UserID)
	row("Name", orDash(k.Name))
	row("Status", string(k.Status))
	row("Scopes", showList(k.Scopes))
	row("Created", showTime(k.CreatedAt, "-"))
	row("Expires", showTime(k.ExpiresAt, "never"))
	if !k.RevokedAt.IsZero() {
		row("Revoked", showTime(k.RevokedAt, "-"))
	}
	row("Last used", showTime(k.LastUsedAt, "never"))
	rate := "default"
	if k.RateLimit > 0 {
		rate = strconv.Itoa(k.RateLimit) + "/min"
	}
	row("Rate limit", rate)
	row("Allowed IPs", showList(k.AllowedCIDRs))
	if len(k.Metadata) > 0 {
		keys := make([]string, 0, len(k.Metadata))
		for name := range k.Metadata {
			keys = append(keys, name)
		}
		slices.Sort(keys)
		for i, name := range keys {
			label := ""
			if i == 0 {
				label = "Metadata"
			}
			row(label, name+"="+k.Metadata[name])
		}
	}
	tw.Flush()
}

// printKeys prints keys as a table, one per line.
func printKeys(w io.Writer, keys []keyadmin.KeyInfo) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tSCOPES\tCREATED\tEXPIRES\tLAST USED")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, orDash(k.Name), k.Status, showList(k.Scopes),
			showTime(k.CreatedAt, "-"), showTime(k.ExpiresAt, "never"), showTime(k.LastUsedAt, "never"))
	}
	tw.Flush()
}
