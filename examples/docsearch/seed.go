package main

import (
	"context"
	"crypto/rand"
	"time"
)

// demoUser is a seeded account. Its password is new on every start (only
// its bcrypt hash is stored), so there is no well-known demo password.
type demoUser struct {
	ID, Email, Name string
	Active          bool
	Password        string
	docs            []document
}

func day(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t.Add(14 * time.Hour)
}

var demoUsers = []demoUser{
	{ID: "alice", Email: "alice@example.com", Name: "Alice Martin", Active: true, docs: []document{
		{Title: "Q3 Financial Report", CreatedAt: day("2025-10-15"), Body: `# Q3 Financial Report

Revenue for Q3 was $125,000, up 12% from Q2, driven by the annual plan launch.
Gross margin was 71%. Operating expenses were $88,000, of which $52,000 was payroll.
We ended the quarter with 412 paying customers and $310,000 in the bank.

## Outlook

For Q4 we expect revenue between $135,000 and $145,000.`},
		{Title: "Team Offsite Notes", CreatedAt: day("2025-09-03"), Body: `Offsite in Lisbon, September 2-3.

Decisions: we hire a second support engineer in November. The mobile app is postponed to next year.
Action items: Alice drafts the hiring plan; Sam books the venue for the winter offsite.`},
		{Title: "Product Roadmap 2026", CreatedAt: day("2025-11-20"), Body: `Roadmap for 2026.

Q1: SSO for business customers. Q2: the public API and webhooks. Q3: the mobile app.
The pricing change to per-seat billing ships with SSO in Q1.`},
	}},
	{ID: "bob", Email: "bob@example.com", Name: "Bob Chen", Active: true, docs: []document{
		{Title: "Q3 Sales Pipeline", CreatedAt: day("2025-10-02"), Body: `Bob's pipeline for Q3: revenue forecast of $480,000 across 37 open deals.
The largest deal is Northwind at $95,000, expected to close in Q4.`},
		{Title: "Vendor Contracts", CreatedAt: day("2025-08-18"), Body: `Hosting contract renews on January 31 at $2,400 a month.
The analytics vendor contract ends in March; do not renew.`},
	}},
	{ID: "carol", Email: "carol@example.com", Name: "Carol Diaz (deactivated)", Active: false, docs: []document{
		{Title: "Carol's Private Notes", CreatedAt: day("2025-07-07"), Body: `Salary review notes for the Q3 revenue team. Confidential.`},
	}},
}

// seedDemo creates (or updates) the demo users with fresh passwords and,
// for users without documents, their demo documents. It returns the users
// with their passwords, to print.
func seedDemo(ctx context.Context, u *users, docs *documents, now time.Time) ([]demoUser, error) {
	out := make([]demoUser, len(demoUsers))
	for i, du := range demoUsers {
		du.Password = rand.Text()[:16]
		if err := u.upsert(ctx, du.ID, du.Email, du.Name, du.Password, du.Active, now); err != nil {
			return nil, err
		}
		existing, err := docs.list(ctx, du.ID)
		if err != nil {
			return nil, err
		}
		if len(existing) == 0 {
			for _, d := range du.docs {
				d.UserID = du.ID
				if _, err := docs.insert(ctx, d); err != nil {
					return nil, err
				}
			}
		}
		out[i] = du
	}
	return out, nil
}
