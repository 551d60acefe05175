package worker

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// roundTrip skips http.Client.Do but must fail the way Do fails: the same
// message (logged and relayed in task errors) and the same error chain.
func TestRoundTripFailsAsDoFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: the dial is refused
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	req := func() *http.Request {
		r, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/chat/completions", nil)
		return r
	}
	_, viaDo := client.Do(req())
	resp, direct := roundTrip(client, req())
	if resp != nil || direct == nil {
		t.Fatalf("roundTrip to a closed port = %v, %v", resp, direct)
	}
	if direct.Error() != viaDo.Error() {
		t.Errorf("roundTrip's error %q, Do's %q", direct, viaDo)
	}
	var ue *url.Error
	var op *net.OpError
	if !errors.As(direct, &ue) || ue.Op != "Post" || !errors.As(direct, &op) {
		t.Errorf("roundTrip's error chain %#v: want *url.Error (Op Post) wrapping *net.OpError", direct)
	}
}

// A base URL with user info keeps Do's Basic authentication.
func TestRoundTripKeepsBasicAuthOfAURLWithUserInfo(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Authorization")
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	u.User = url.UserPassword("user", "secret")
	req, _ := http.NewRequest(http.MethodGet, u.String()+"/", nil)
	resp, err := roundTrip(srv.Client(), req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if auth := <-got; auth != "Basic dXNlcjpzZWNyZXQ=" {
		t.Errorf("Authorization = %q, want Basic for user:secret", auth)
	}
}
