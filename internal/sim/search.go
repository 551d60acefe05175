package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// Search result counts.
const (
	DefaultSearchResults = 5
	MaxSearchResults     = 50
)

type searchRequest struct {
	Query      string `json:"query"`
	MaxResults *int   `json:"max_results"`
	NumResults *int   `json:"num_results"`
}

type searchResult struct {
	Title   string  `json:"title"`
	URL     string  `json:"url"`
	Content string  `json:"content"`
	Score   float64 `json:"score"`
}

// search answers POST /search ({"query", "max_results" or "num_results"})
// and GET /search?q=…&max_results=….
func (s *Simulator) search(w http.ResponseWriter, r *http.Request, body []byte) {
	var req searchRequest
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		req.Query = q.Get("q")
		if req.Query == "" {
			req.Query = q.Get("query")
		}
		for _, name := range []string{"max_results", "num_results"} {
			if v := q.Get(name); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil {
					writeError(w, http.StatusBadRequest, typeInvalidRequest, name, "invalid_type",
						fmt.Sprintf("'%s' must be an integer, got %q.", name, v))
					return
				}
				req.MaxResults = &n
			}
		}
	} else if !decodeBody(w, body, &req) {
		return
	}
	query := strings.TrimSpace(req.Query)
	if query == "" {
		writeError(w, http.StatusBadRequest, typeInvalidRequest, "query", "missing_required_parameter",
			"'query' is required and must not be empty.")
		return
	}
	n, param := DefaultSearchResults, "max_results"
	if req.NumResults != nil {
		n, param = *req.NumResults, "num_results"
	}
	if req.MaxResults != nil {
		n, param = *req.MaxResults, "max_results"
	}
	if n < 1 || n > MaxSearchResults {
		writeError(w, http.StatusBadRequest, typeInvalidRequest, param, "invalid_value",
			fmt.Sprintf("'%s' must be between 1 and %d, got %d.", param, MaxSearchResults, n))
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Query   string         `json:"query"`
		Results []searchResult `json:"results"`
	}{query, searchResults(query, n)})
}

// searchResults derives n results from the query alone, best first.
func searchResults(query string, n int) []searchResult {
	sum := sha256.Sum256([]byte(query))
	tag := binary.BigEndian.Uint32(sum[:4])
	frac := float64(binary.BigEndian.Uint32(sum[4:8])) / math.MaxUint32
	out := make([]searchResult, n)
	for i := range out {
		score := 0.99*math.Pow(0.9, float64(i)) - 0.005*frac
		out[i] = searchResult{
			Title:   fmt.Sprintf("%s (result %d)", query, i+1),
			URL:     fmt.Sprintf("https://example.com/deersim/%08x/%d", tag, i+1),
			Content: fmt.Sprintf("Simulated search result %d about %s. deersim gives the same results for the same query.", i+1, query),
			Score:   math.Round(score*1e4) / 1e4,
		}
	}
	return out
}
