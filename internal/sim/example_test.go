package sim_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/deer-runtime/deer/internal/sim"
)

func Example() {
	s := sim.New(sim.DefaultKnobs(), sim.WithSeed(1))
	srv := httptest.NewServer(s)
	defer srv.Close()
	defer s.Close()

	resp, err := http.Post(srv.URL+"/v1/embeddings", "application/json",
		strings.NewReader(`{"model": "sim-embed", "input": ["first", "second"]}`))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data []struct {
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		panic(err)
	}
	for _, d := range out.Data {
		fmt.Println(d.Index, len(d.Embedding))
	}
	st := s.Stats()
	fmt.Println(st.EmbeddingCalls, st.EmbeddingInputCounts)
	// Output:
	// 0 8
	// 1 8
	// 1 [2]
}

func ExampleKnobs_UnmarshalJSON() {
	k := sim.DefaultKnobs()
	if err := json.Unmarshal([]byte(`{"latency": "300ms", "error_rate": 0.1}`), &k); err != nil {
		panic(err)
	}
	fmt.Println(k.Latency, k.ErrorRate, k.StreamChunks)

	err := json.Unmarshal([]byte(`{"error_rate": 2}`), &k)
	fmt.Println(err)
	// Output:
	// 300ms 0.1 5
	// error_rate: must be between 0 and 1, got 2
}
