package metricname

import "testing"

func TestLabels(t *testing.T) {
	cases := []struct {
		kv   []string
		want string
	}{
		{[]string{"upstream", "sim"}, `{upstream="sim"}`},
		{[]string{"upstream", "a", "endpoint", "http://h:1"}, `{upstream="a",endpoint="http://h:1"}`},
		{[]string{"x", `q"u\o` + "\nte"}, `{x="q\"u\\o\nte"}`},
		{[]string{"k", "v", "dangling"}, `{k="v"}`},
		{nil, `{}`},
	}
	for _, c := range cases {
		if got := Labels(c.kv...); got != c.want {
			t.Errorf("Labels(%q) = %s, want %s", c.kv, got, c.want)
		}
	}
}
