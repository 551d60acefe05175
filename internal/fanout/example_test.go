package fanout_test

import (
	"fmt"
	"io"
	"strings"

	"github.com/deer-runtime/deer/internal/fanout"
)

func Example() {
	body := io.NopCloser(strings.NewReader("data: hi\n\ndata: [DONE]\n\n"))
	recorded := make(chan []byte, 1)
	s := fanout.New(body, func(complete bool, data []byte, chunks []int) {
		if complete {
			recorded <- data // e.g. store in the cache for replay
		}
	})
	r, ok := s.Join()
	if !ok {
		return // the stream failed: make a call of your own
	}
	defer r.Close()
	relayed, err := io.ReadAll(r)
	fmt.Printf("%q %v\n", relayed, err)
	fmt.Printf("%q\n", <-recorded)
	// Output:
	// "data: hi\n\ndata: [DONE]\n\n" <nil>
	// "data: hi\n\ndata: [DONE]\n\n"
}
