// Package devserver is the examples' process and HTTP plumbing, which has
// nothing to do with Fief: the -addr and -fief-addr flags, a context that
// Ctrl-C cancels, and an HTTP server with timeouts that shuts down
// gracefully.
//
// In your application, run an http.Server the way you already do; Serve
// shows sensible timeouts and a graceful shutdown if you need them.
package devserver

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Main is the examples' main function. It defines the flags -addr
// (default defaultAddr) and -fief-addr (the address of the embedded Fief
// test server, "" for a random port), parses the command line (define the
// example's own flags before), then calls run with them, standard output
// and a context that SIGINT (Ctrl-C) or SIGTERM cancels; a second signal
// kills the process at once. When run fails, Main prints "name: error" and
// exits with status 1.
func Main(name, defaultAddr string, run func(ctx context.Context, out io.Writer, addr, fiefAddr string) error) {
	addr := flag.String("addr", defaultAddr, "address to listen on (port 0: a random free port)")
	fiefAddr := flag.String("fief-addr", "", "address of the embedded Fief test server (default: a random port)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop) // after the first signal, the next one is fatal
	err := run(ctx, os.Stdout, *addr, *fiefAddr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// Server is a listener waiting for Serve.
type Server struct {
	// URL is where browsers reach the server, without a trailing slash:
	// the public URL given to Listen, else http://<host>:<port> of the
	// listener (127.0.0.1 for a listener on every interface).
	URL string
	ln  net.Listener
}

// Listen listens on addr (host:port; port 0 picks a free one). publicURL,
// when not empty, is the URL browsers reach the server at, behind a proxy
// that terminates TLS for instance; it becomes the Server's URL.
func Listen(addr, publicURL string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if publicURL == "" {
		publicURL = "http://" + BrowserAddr(ln.Addr().(*net.TCPAddr))
	}
	return &Server{URL: strings.TrimRight(publicURL, "/"), ln: ln}, nil
}

// Serve runs an HTTP server for h until ctx is done, then shuts it down,
// giving the requests in flight 10 seconds to finish.
func (s *Server) Serve(ctx context.Context, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Close closes the listener of a Server that is not serving. It is
// harmless after Serve.
func (s *Server) Close() error {
	if err := s.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// Serve listens on addr, calls ready with the server's URL (to print what
// to call or open), then serves h until ctx is done, as Server.Serve.
func Serve(ctx context.Context, addr string, h http.Handler, ready func(url string)) error {
	s, err := Listen(addr, "")
	if err != nil {
		return err
	}
	defer s.Close()
	ready(s.URL)
	return s.Serve(ctx, h)
}

// BrowserAddr returns the host:port browsers reach a listener on: a
// listener on all interfaces (-addr :8000) is reached on 127.0.0.1.
func BrowserAddr(a *net.TCPAddr) string {
	ip := a.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(a.Port))
}
