package conf

import (
	"strings"
)

// closest returns the candidate name most likely meant by a misspelled
// one, or "" when none is near enough to be worth suggesting. Case is
// ignored (MAX_CONNECTIONS means max_connections). Near enough: at most
// one edit per four characters (two for max_workrs, three for
// max_connectoins), at least one; or name is the start of exactly one
// candidate (debug for debug_mode).
func closest(name string, candidates []string) string {
	name = strings.ToLower(name)
	best, bestDist := "", -1
	var prefixOf []string
	for _, c := range candidates {
		lc := strings.ToLower(c)
		d := editDistance(name, lc)
		if d <= max(1, min(3, len(lc)/4)) && (bestDist < 0 || d < bestDist) {
			best, bestDist = c, d
		}
		if len(name) >= 4 && strings.HasPrefix(lc, name) {
			prefixOf = append(prefixOf, c)
		}
	}
	if best == "" && len(prefixOf) == 1 {
		best = prefixOf[0]
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of adjacent bytes each
// count one (max_wokrers is one edit from max_workers).
func editDistance(a, b string) int {
	// Three rows of the dynamic programme: i-2, i-1 and i.
	prev2, prev, cur := make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
