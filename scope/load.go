package scope

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// LoadPolicy reads a JSON PolicyConfig from r and compiles it with
// NewPolicy. Unknown fields, trailing data and type mismatches are errors;
// every error wraps ErrInvalidPolicy and names the field or position.
func LoadPolicy(r io.Reader) (*Policy, error) {
	data, err := io.ReadAll(io.LimitReader(r, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: read: %v", ErrInvalidPolicy, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cfg PolicyConfig
	if err := dec.Decode(&cfg); err != nil {
		return nil, jsonError(data, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: unexpected data after the policy object", ErrInvalidPolicy)
	}
	return NewPolicy(cfg)
}

// LoadPolicyFile is LoadPolicy on the named file; errors start with the
// file name.
func LoadPolicyFile(name string) (*Policy, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPolicy, err)
	}
	defer f.Close()
	p, err := LoadPolicy(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

func jsonError(data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := position(data, syn.Offset-1)
		return fmt.Errorf("%w: line %d, column %d: %v", ErrInvalidPolicy, line, col, syn)
	case errors.As(err, &typ):
		line, col := position(data, typ.Offset-1)
		return fmt.Errorf("%w: %s: line %d, column %d: want %s, got JSON %s", ErrInvalidPolicy, typ.Field, line, col, typ.Type, typ.Value)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: empty input", ErrInvalidPolicy)
	}
	// Unknown fields: encoding/json says `json: unknown field "x"`.
	return fmt.Errorf("%w: %v", ErrInvalidPolicy, err)
}

func position(data []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(data)))
	line = 1 + bytes.Count(data[:off], []byte("\n"))
	col = int(off) - bytes.LastIndexByte(data[:off], '\n')
	return line, col
}
