package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/mcpauth/mcpauth/store"
)

// user is a row of the host app's users table.
type user struct {
	ID     string
	Email  string
	Name   string
	Active bool
}

// users is the host app's account system: bcrypt password hashes and an
// active flag. It is also the Guard's store.UserChecker, so that the keys of
// a deactivated user stop working at once.
type users struct {
	d *database
	// cost is the bcrypt cost of new hashes.
	cost int
	// dummyHash is compared against when the email is unknown, so that a
	// login for an unknown address takes as long as one with a wrong password.
	dummyHash []byte
}

var _ store.UserChecker = (*users)(nil)

// errBadLogin is the one answer to a wrong email or a wrong password.
var errBadLogin = errors.New("wrong email or password")

// errInactive is the answer to a correct password of a deactivated account.
var errInactive = errors.New("this account is deactivated")

// newUsers returns the user store; cost is the bcrypt cost of new hashes
// (bcrypt.DefaultCost, 10, if 0).
func newUsers(d *database, cost int) (*users, error) {
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte("not a password anyone has"), cost)
	if err != nil {
		return nil, err
	}
	return &users{d: d, cost: cost, dummyHash: h}, nil
}

// login returns the user whose email and password these are. Unknown email
// and wrong password give the same error, in the same time.
func (u *users) login(ctx context.Context, email, password string) (user, error) {
	var (
		usr  user
		hash string
	)
	err := u.d.db.QueryRowContext(ctx, u.d.q(`SELECT id, email, name, active, password_hash FROM users WHERE email = $1`),
		normalizeEmail(email)).Scan(&usr.ID, &usr.Email, &usr.Name, &usr.Active, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		_ = bcrypt.CompareHashAndPassword(u.dummyHash, []byte(password))
		return user{}, errBadLogin
	}
	if err != nil {
		return user{}, fmt.Errorf("look up user: %w", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return user{}, errBadLogin
	}
	if !usr.Active {
		return user{}, errInactive
	}
	return usr, nil
}

// get returns the user with this ID, or sql.ErrNoRows.
func (u *users) get(ctx context.Context, id string) (user, error) {
	var usr user
	err := u.d.db.QueryRowContext(ctx, u.d.q(`SELECT id, email, name, active FROM users WHERE id = $1`), id).
		Scan(&usr.ID, &usr.Email, &usr.Name, &usr.Active)
	return usr, err
}

// UserActive implements store.UserChecker: unknown users are not active.
func (u *users) UserActive(ctx context.Context, id string) (bool, error) {
	usr, err := u.get(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return usr.Active, nil
}

// upsert creates the user or, if the email exists, sets its name, password
// and active flag.
func (u *users) upsert(ctx context.Context, id, email, name, password string, active bool, now time.Time) error {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), u.cost)
	if err != nil {
		return err
	}
	_, err = u.d.db.ExecContext(ctx, u.d.q(`INSERT INTO users (id, email, name, password_hash, active, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET email = excluded.email, name = excluded.name, password_hash = excluded.password_hash, active = excluded.active`),
		id, normalizeEmail(email), name, string(hash), active, now.Unix())
	if err != nil {
		return fmt.Errorf("save user %s: %w", id, err)
	}
	return nil
}

func normalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
