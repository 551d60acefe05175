package conf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
	// Environ lists the environment as os.Environ does (NAME=VALUE), to
	// warn about DEER_* variables deer does not read. nil means os.Environ
	// when Lookup is nil too, and no such warnings otherwise.
	Environ func() []string
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
	l := LoadAll(opts)
	return l.Config, l.Problems.orNil()
}

// LoadWithSource is Load that also says which layer set each key.
func LoadWithSource(opts LoadOptions) (*Config, Source, error) {
	l := LoadAll(opts)
	if len(l.Problems) > 0 {
		return nil, nil, l.Problems
	}
	return l.Config, l.Source, nil
}

// Loaded is what LoadAll found.
type Loaded struct {
	// Config is the configuration, or nil when there are Problems.
	Config *Config
	// Source says which layer set each key.
	Source Source
	// Problems are every error of every layer: deerd refuses to start on
	// any. Problems of one layer do not stop the next from being read, so
	// one run of deerd --check-config lists them all.
	Problems FieldErrors
	// Warnings are what deerd starts with but reports: DEER_* variables
	// that are not deer's (typos, most likely), each with the closest
	// real name when one is near.
	Warnings FieldErrors
}

// LoadAll layers Default() < profile < file < DEER_* env and validates the
// result, collecting the problems of every stage instead of stopping at
// the first. A layer with problems still applies what it could: a file
// with a syntax error applies nothing, one with an unknown key or a value
// of the wrong type everything else, and validation runs over what was
// read. A key already reported by a layer is not reported again by
// validation (it holds a lower layer's value, not the one written).
func LoadAll(opts LoadOptions) Loaded {
	c, src := Default(), Source{}
	var errs FieldErrors
	add := func(err error) {
		var fe FieldErrors
		if errors.As(err, &fe) {
			errs = append(errs, fe...)
		}
	}
	switch {
	case opts.Profile == "":
	case !slices.Contains(Profiles, opts.Profile):
		errs = append(errs, FieldError{Reason: fmt.Sprintf("--profile %q: must be one of %s",
			opts.Profile, strings.Join(Profiles, ", "))})
	default:
		dir := opts.ProfileDir
		if dir == "" {
			dir = filepath.Join("conf", "profiles")
			if opts.ConfigPath != "" {
				dir = filepath.Join(filepath.Dir(opts.ConfigPath), "profiles")
			}
		}
		path := filepath.Join(dir, opts.Profile+".toml")
		add(decodeFile(c, src, path, "profile "+path))
	}
	if opts.ConfigPath != "" {
		add(decodeFile(c, src, opts.ConfigPath, "file "+opts.ConfigPath))
	}
	lookup, environ := opts.Lookup, opts.Environ
	if lookup == nil {
		lookup = os.LookupEnv
		if environ == nil {
			environ = os.Environ
		}
	}
	add(applyEnv(c, src, lookup))
	reported := map[string]bool{}
	for _, e := range errs {
		reported[e.Key] = true
	}
	for _, e := range c.validate().withSource(src) {
		if !reported[e.Key] && (e.other == "" || !reported[e.other]) {
			errs = append(errs, e)
		}
	}
	l := Loaded{Source: src, Problems: errs}
	if environ != nil {
		l.Warnings = unknownEnv(environ(), c)
	}
	if len(errs) == 0 {
		l.Config = c
	}
	return l
}

func decodeFile(c *Config, src Source, path, layer string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return FieldErrors{{Reason: err.Error()}}
	}
	return decodeTOML(c, src, data, path, layer)
}
