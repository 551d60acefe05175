package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestFlagsAndMissingBinaries(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"extra"}, 2, `unexpected argument "extra"`},
		{[]string{"--rates", "1"}, 2, "flag provided but not defined: -rates"},
		{[]string{"--bin", t.TempDir()}, 1, "deerd not found in"},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), c.args, &stderr); code != c.code || !strings.Contains(stderr.String(), c.says) {
			t.Errorf("deerbench %q: exit %d, stderr %q; want %d and %q", c.args, code, stderr.String(), c.code, c.says)
		}
	}
}
