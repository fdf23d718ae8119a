package devserver

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestBrowserAddr(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:8000": "127.0.0.1:8000",
		"0.0.0.0:8000":   "127.0.0.1:8000",
		"[::]:8000":      "127.0.0.1:8000",
		"[::1]:8000":     "[::1]:8000",
		":8000":          "127.0.0.1:8000",
	} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := BrowserAddr(a); got != want {
			t.Errorf("BrowserAddr(%s) = %s, want %s", addr, got, want)
		}
	}
}

func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	urls := make(chan string, 1)
	done := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello") })
	go func() { done <- Serve(ctx, "127.0.0.1:0", h, func(url string) { urls <- url }) }()

	// ready gets the URL once the server listens.
	var url string
	select {
	case url = <-urls:
	case err := <-done:
		t.Fatalf("Serve returned %v before ready", err)
	case <-time.After(10 * time.Second):
		t.Fatal("ready was not called")
	}
	if !strings.HasPrefix(url, "http://127.0.0.1:") || strings.HasSuffix(url, ":0") {
		t.Errorf("URL %s", url)
	}
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "hello" {
		t.Errorf("GET /: %s %s", resp.Status, body)
	}

	// It stops, without an error, when its context is done.
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after its context was canceled")
	}
	if _, err := http.Get(url + "/"); err == nil {
		t.Error("the server still answers")
	}
}

func TestListen(t *testing.T) {
	s, err := Listen("127.0.0.1:0", "https://app.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.URL != "https://app.example.com" {
		t.Errorf("URL %q, want the public URL without its trailing slash", s.URL)
	}

	// A busy address is an error, and ready is not called.
	err = Serve(t.Context(), s.ln.Addr().String(), http.NotFoundHandler(), func(string) { t.Error("ready called") })
	if err == nil {
		t.Error("Serve succeeded on a busy address")
	}

	// Close is harmless after Close.
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
