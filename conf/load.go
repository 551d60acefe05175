package conf

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// DefaultPath is the config file deerd reads when --config is not given
// and the file exists.
const DefaultPath = "conf/deer.toml"

// Profiles are the names --profile accepts.
var Profiles = []string{"production", "development", "test"}

// LoadOptions says where the layers of a configuration come from.
type LoadOptions struct {
	// ConfigPath is the TOML file; "" starts from the defaults (and
	// profile) alone.
	ConfigPath string
	// Profile is "", or one of Profiles: loads ProfileDir/NAME.toml.
	Profile string
	// ProfileDir defaults to the "profiles" directory next to ConfigPath
	// (conf/profiles for conf/deer.toml), or conf/profiles without a file.
	ProfileDir string
	// Lookup reads the environment; nil means os.LookupEnv. Tests pass a
	// map's lookup so they never touch the process environment.
	Lookup func(name string) (string, bool)
}

// Source records, per dotted key, the layer that last set it: "profile
// PATH", "file PATH" or "env NAME". Keys at their built-in default are
// absent. Upstream fields appear as "upstreams.NAME.FIELD".
type Source map[string]string

// Env returns the DEER_* variable that set key, or "".
func (s Source) Env(key string) string {
	if name, ok := strings.CutPrefix(s[key], "env "); ok {
		return name
	}
	return ""
}

// Load builds the configuration: Default() < profile < file < DEER_* env,
// then validates it. Errors are FieldErrors naming the key, and the env
// var when one set it; deerd refuses to start on any.
func Load(opts LoadOptions) (*Config, error) {
	c, _, err := LoadWithSource(opts)
	return c, err
}

// LoadWithSource is Load that also says which layer set each key.
func LoadWithSource(opts LoadOptions) (*Config, Source, error) {
	c, src := Default(), Source{}
	if opts.Profile != "" {
		if !slices.Contains(Profiles, opts.Profile) {
			return nil, nil, FieldErrors{{Reason: fmt.Sprintf("--profile %q: must be one of %s",
				opts.Profile, strings.Join(Profiles, ", "))}}
		}
		dir := opts.ProfileDir
		if dir == "" {
			dir = filepath.Join("conf", "profiles")
			if opts.ConfigPath != "" {
				dir = filepath.Join(filepath.Dir(opts.ConfigPath), "profiles")
			}
		}
		path := filepath.Join(dir, opts.Profile+".toml")
		if err := decodeFile(c, src, path, "profile "+path); err != nil {
			return nil, nil, err
		}
	}
	if opts.ConfigPath != "" {
		if err := decodeFile(c, src, opts.ConfigPath, "file "+opts.ConfigPath); err != nil {
			return nil, nil, err
		}
	}
	lookup := opts.Lookup
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if err := applyEnv(c, src, lookup); err != nil {
		return nil, nil, err
	}
	if err := c.validate().withSource(src).orNil(); err != nil {
		return nil, nil, err
	}
	return c, src, nil
}

func decodeFile(c *Config, src Source, path, layer string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return FieldErrors{{Reason: err.Error()}}
	}
	return decodeTOML(c, src, data, path, layer)
}

var lastKeyRE = regexp.MustCompile(`\(last key "([^"]*)"\)`)

// decodeTOML decodes data over c, which holds the lower layers, so keys
// absent from data keep their value. An upstream table replaces a
// same-named upstream of a lower layer whole: its fields are not merged.
func decodeTOML(c *Config, src Source, data []byte, file, layer string) error {
	md, err := toml.Decode(string(data), c)
	if err != nil {
		// BurntSushi names the key in its message but only exposes it
		// on syntax errors; type mismatches are plain errors.
		fe := FieldError{Reason: file + ": " + err.Error()}
		if m := lastKeyRE.FindStringSubmatch(err.Error()); m != nil {
			fe.Key = m[1]
		}
		return FieldErrors{fe}
	}
	var errs FieldErrors
	var reported []toml.Key
	unknown := func(k toml.Key) {
		for _, r := range reported {
			if len(r) <= len(k) && slices.Equal(r, k[:len(r)]) {
				return // under a table already reported
			}
		}
		reported = append(reported, k)
		errs = append(errs, FieldError{Key: k.String(), Reason: fmt.Sprintf("%s: unknown key %s", file, k)})
	}
	for _, k := range md.Undecoded() {
		unknown(k)
	}
	// BurntSushi falls back to a case-insensitive match, which would let
	// MAX_CONNECTIONS through here and fail everywhere else (env, JSON).
	for _, k := range md.Keys() {
		if !canonical(k) {
			unknown(k)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	for _, k := range md.Keys() {
		if _, ok := fieldsByKey[k.String()]; ok || len(k) == 3 {
			src[strings.Join(k, ".")] = layer
		}
	}
	for name, u := range c.Upstreams {
		if !md.IsDefined("upstreams", name) {
			continue
		}
		if !md.IsDefined("upstreams", name, "cache") {
			u.Cache = "auto"
		}
		if !md.IsDefined("upstreams", name, "timeout") {
			u.Timeout = defaultUpstreamTimeout
		}
		c.Upstreams[name] = u
	}
	return nil
}

// canonical reports whether k is spelled exactly as a Config key.
func canonical(k toml.Key) bool {
	if k[0] == "upstreams" {
		return len(k) <= 2 || len(k) == 3 && upstreamFields[k[2]]
	}
	if len(k) == 1 && sections[k[0]] {
		return true
	}
	_, ok := fieldsByKey[k.String()]
	return ok
}
