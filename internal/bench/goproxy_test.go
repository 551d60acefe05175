package bench

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestGoProxyRelaysToTheUpstream(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "up:"+r.URL.Path)
	}))
	defer up.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeGoProxy(ctx, addr, up.URL) }()
	ready := Answers("http://" + addr + "/x")
	for !ready(ctx) {
		select {
		case err := <-done:
			t.Fatalf("proxy ended: %v", err)
		default:
		}
	}
	resp, err := http.Get("http://" + addr + "/v1/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "up:/v1/chat/completions" {
		t.Errorf("relayed %q", body)
	}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if err := ServeGoProxy(context.Background(), addr, "not a url"); err == nil {
		t.Error("a bad upstream must be refused")
	}
}
