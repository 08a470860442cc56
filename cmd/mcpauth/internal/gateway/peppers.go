package gateway

import (
	"fmt"
	"os"
	"strings"

	"github.com/mcpauth/mcpauth/mcpauth/apikey"
)

// Peppers reads the peppers keys.pepper_env or keys.pepper_file name: the
// current one first, then retired ones (MCPAUTH_PEPPERS_RETIRED, comma
// separated, with pepper_env; the file's later lines with pepper_file).
// None is not an error: keys are then plain SHA-256, as the CLI makes them
// without a pepper. Errors name the variable or file, never a secret.
func (c *Config) Peppers(getenv func(string) string) ([]apikey.Pepper, error) {
	var lines []string
	var where func(i int) string
	if c.Keys.PepperFile != "" {
		b, err := os.ReadFile(c.Keys.PepperFile)
		if err != nil {
			return nil, fieldErr("keys.pepper_file", "%v", err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				lines = append(lines, l)
			}
		}
		where = func(i int) string { return fmt.Sprintf("keys.pepper_file line %d", i+1) }
	} else {
		cur := strings.TrimSpace(getenv(c.Keys.PepperEnv))
		retired := getenv("MCPAUTH_PEPPERS_RETIRED")
		if cur == "" && strings.TrimSpace(retired) != "" {
			return nil, fieldErr("keys.pepper_env", "$MCPAUTH_PEPPERS_RETIRED is set but $%s is not", c.Keys.PepperEnv)
		}
		if cur != "" {
			lines = append(lines, cur)
		}
		for _, s := range strings.Split(retired, ",") {
			if s = strings.TrimSpace(s); s != "" {
				lines = append(lines, s)
			}
		}
		where = func(i int) string {
			if i == 0 {
				return "$" + c.Keys.PepperEnv
			}
			return fmt.Sprintf("$MCPAUTH_PEPPERS_RETIRED entry %d", i)
		}
	}
	out := make([]apikey.Pepper, 0, len(lines))
	for i, l := range lines {
		p, err := apikey.ParsePepper(l)
		if err != nil {
			return nil, fmt.Errorf("%s: %s", where(i), strings.TrimPrefix(err.Error(), "mcpauth: "))
		}
		out = append(out, p)
	}
	return out, nil
}
