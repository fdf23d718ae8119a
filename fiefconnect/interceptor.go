package fiefconnect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"connectrpc.com/connect"

	"github.com/fief-go/fief"
)

// The fixed messages of the handler side's refusals: the caller sees one of
// these, never the text of the error behind it.
const (
	msgUnauthenticated = "missing, invalid or expired access token"
	msgForbidden       = "the access token lacks a required scope, ACR or permission"
	msgUnavailable     = "authentication is unavailable, retry later"
	msgNotAllowed      = "procedure not allowed"
)

// Interceptor authenticates the RPCs of Connect handlers with a
// [fief.Authenticator], each procedure with its own [fief.Route]. Make it
// with [NewInterceptor] and install it on handlers with
// [connect.WithInterceptors], or as a request gate with
// [connect.WithRequestGate] and [Interceptor.Gate], which refuses before the
// request message is read.
//
// An RPC's token is the Bearer token of its Authorization header, read as
// the net/http middleware reads it ([fief.Route.AuthenticateAuthorization]):
// a header that cannot be read (several Authorization values, a token too
// long) is a malformed token, so that an [fief.Optional] route lets the RPC
// through anonymously and any other refuses it as unauthenticated. The
// derived context ([fief.AccessTokenInfoFromContext],
// [fief.UserInfoFromContext], [fief.TenantFromContext]) goes to the next
// function. Refusals are [*connect.Error] values with a fixed message:
//
//   - [connect.CodeUnauthenticated]: no token, or an invalid or expired one
//     ([fief.ErrUnauthenticated]);
//   - [connect.CodePermissionDenied]: a valid token without a scope, the ACR
//     or a permission the procedure requires ([fief.ErrForbidden]), and
//     every RPC of a procedure that has no route (see [NewInterceptor]);
//   - [connect.CodeUnavailable]: Fief cannot be used ([fief.ErrUnavailable]);
//   - [connect.CodeCanceled] ("context canceled") and
//     [connect.CodeDeadlineExceeded] ("context deadline exceeded"): the RPC
//     was canceled, or its deadline passed, while Fief was waited for (the
//     key set's first fetch, the user's info): not Fief's failure, and not
//     to be retried as one.
//
// The error's cause is not sent: it stays reachable with errors.Is and
// errors.As for interceptors of the same process that wrap this one (a
// logging interceptor, say). The Authenticator's logger ([fief.WithLogger])
// logs refusals, as for every transport.
//
// The Interceptor acts on handlers only: on a client (WrapUnary of a
// client's request, WrapStreamingClient) it does nothing, so that one list
// of interceptors may serve the handlers and the clients of a program. To
// authenticate a client's calls, use [NewClientInterceptor].
type Interceptor struct {
	// routes holds the listed procedures; a nil Route is a public one.
	routes map[string]*fief.Route
	// def is the route of the procedures not listed; nil refuses them.
	def *fief.Route
}

var _ connect.Interceptor = (*Interceptor)(nil)

// Option configures an [Interceptor]: [WithProcedure], [WithPublic],
// [WithDefault].
type Option func(*config) error

type config struct {
	procs      map[string]procConfig
	order      []string // procedures in the order they were given, for stable errors
	def        []fief.RouteOption
	hasDefault bool
}

type procConfig struct {
	public bool
	opts   []fief.RouteOption
}

// WithProcedure requires, for the RPCs of procedure, a token that meets
// opts: [fief.RequireScopes], [fief.RequireACR], [fief.RequirePermissions],
// [fief.Optional], [fief.LoadUserInfo], [fief.Refresh]. A procedure is named
// as Connect names it, "/package.Service/Method" (what Spec().Procedure
// gives, and the generated code's ...Procedure constants); no options means
// any valid token. A procedure may be given once, by WithProcedure or
// [WithPublic].
func WithProcedure(procedure string, opts ...fief.RouteOption) Option {
	return func(c *config) error {
		return c.add("WithProcedure", procedure, procConfig{opts: opts})
	}
}

// WithPublic lets the RPCs of procedures through without authentication:
// their handlers see no identity, whatever the RPC presents. For an identity
// when there is one, use [WithProcedure] with [fief.Optional] instead.
func WithPublic(procedures ...string) Option {
	return func(c *config) error {
		if len(procedures) == 0 {
			return errors.New("fiefconnect: WithPublic: no procedure")
		}
		for _, p := range procedures {
			if err := c.add("WithPublic", p, procConfig{public: true}); err != nil {
				return err
			}
		}
		return nil
	}
}

// WithDefault sets the route of the procedures that neither [WithProcedure]
// nor [WithPublic] names, with the same options as WithProcedure. Without
// it, the RPCs of those procedures are refused ([connect.CodePermissionDenied])
// before any authentication: a procedure added to a service is closed until
// it is configured.
func WithDefault(opts ...fief.RouteOption) Option {
	return func(c *config) error {
		if c.hasDefault {
			return errors.New("fiefconnect: WithDefault given twice")
		}
		c.def, c.hasDefault = opts, true
		return nil
	}
}

func (c *config) add(fn, procedure string, p procConfig) error {
	if !validProcedure(procedure) {
		return fmt.Errorf("fiefconnect: %s: %q is not a procedure of the form /package.Service/Method", fn, procedure)
	}
	if _, dup := c.procs[procedure]; dup {
		return fmt.Errorf("fiefconnect: %s: procedure %q is configured twice", fn, procedure)
	}
	c.procs[procedure] = p
	c.order = append(c.order, procedure)
	return nil
}

// validProcedure reports whether p has the shape of a Connect procedure:
// "/", a service, "/", a method, neither empty.
func validProcedure(p string) bool {
	rest, ok := strings.CutPrefix(p, "/")
	if !ok {
		return false
	}
	service, method, ok := strings.Cut(rest, "/")
	return ok && service != "" && method != "" && !strings.Contains(method, "/") &&
		!strings.ContainsAny(p, " \t\r\n")
}

// NewInterceptor returns an [Interceptor] that authenticates RPCs with auth,
// each procedure as opts say. All routes are built here
// ([fief.Authenticator.Route]), once; a malformed procedure name, a
// procedure given twice, a nil option and no option at all (every RPC
// would be refused) are errors. The procedures that no option names are
// refused unless [WithDefault] gives them a route.
func NewInterceptor(auth *fief.Authenticator, opts ...Option) (*Interceptor, error) {
	if auth == nil {
		return nil, errors.New("fiefconnect: NewInterceptor: nil Authenticator")
	}
	c := config{procs: map[string]procConfig{}}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("fiefconnect: NewInterceptor: nil Option")
		}
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	if len(c.procs) == 0 && !c.hasDefault {
		return nil, errors.New("fiefconnect: NewInterceptor: no procedure configured (WithProcedure, WithPublic, WithDefault): every RPC would be refused")
	}
	i := &Interceptor{routes: make(map[string]*fief.Route, len(c.procs))}
	for _, name := range c.order {
		p := c.procs[name]
		if p.public {
			i.routes[name] = nil
			continue
		}
		rt, err := route(auth, p.opts)
		if err != nil {
			return nil, fmt.Errorf("fiefconnect: WithProcedure(%q): %w", name, err)
		}
		i.routes[name] = rt
	}
	if c.hasDefault {
		rt, err := route(auth, c.def)
		if err != nil {
			return nil, fmt.Errorf("fiefconnect: WithDefault: %w", err)
		}
		i.def = rt
	}
	return i, nil
}

// route builds a route, turning the core's panic on a nil option (a
// programmer's error) into an error of the constructor.
func route(auth *fief.Authenticator, opts []fief.RouteOption) (rt *fief.Route, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return auth.Route(opts...), nil
}

// WrapUnary implements [connect.Interceptor]: it authenticates a handler's
// unary RPC before next runs, and passes a client's request through.
func (i *Interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient || gated(ctx, i) {
			return next(ctx, req)
		}
		ctx, err := i.authenticate(ctx, req.Spec().Procedure, req.Header())
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient implements [connect.Interceptor]: it returns next,
// since the Interceptor acts on handlers only.
func (i *Interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements [connect.Interceptor]: it authenticates a
// streaming RPC before next runs, so before any message is received.
func (i *Interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if gated(ctx, i) {
			return next(ctx, conn)
		}
		ctx, err := i.authenticate(ctx, conn.Spec().Procedure, conn.RequestHeader())
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

// Gate is a [connect.RequestGateFunc] (install it with
// connect.WithRequestGate(i.Gate)) that authenticates an RPC as the
// Interceptor does, but before the handler reads the request message, and
// before any interceptor runs: an unauthenticated caller costs no decoding,
// and interceptors do not see refused RPCs. The same Interceptor installed
// also as an interceptor on the handler does not authenticate the RPC a
// second time.
func (i *Interceptor) Gate(ctx context.Context, spec connect.Spec, _ connect.Peer, header http.Header) (context.Context, error) {
	out, err := i.authenticate(ctx, spec.Procedure, header)
	if err != nil {
		return ctx, err
	}
	return context.WithValue(out, gateKey{}, i), nil
}

// gateKey marks a context whose RPC an Interceptor's Gate authenticated.
type gateKey struct{}

func gated(ctx context.Context, i *Interceptor) bool {
	g, _ := ctx.Value(gateKey{}).(*Interceptor)
	return g == i
}

// authenticate runs the route of procedure on the token of header.
func (i *Interceptor) authenticate(ctx context.Context, procedure string, header http.Header) (context.Context, error) {
	rt, listed := i.routes[procedure]
	switch {
	case listed && rt == nil: // public
		return ctx, nil
	case !listed && i.def == nil:
		return ctx, refusal(connect.CodePermissionDenied, msgNotAllowed,
			fmt.Errorf("fiefconnect: procedure %q has no route and there is no default route", procedure))
	case !listed:
		rt = i.def
	}
	// The core reads the header as BearerToken does: several values, or a
	// token too large, are refused as malformed (anonymous on an Optional
	// route, like an invalid token), and logged.
	out, err := rt.AuthenticateAuthorization(ctx, header.Values("Authorization"))
	if err != nil {
		return ctx, classRefusal(ctx, err)
	}
	return out, nil
}

// classRefusal maps an error of the core for an RPC of context ctx to its
// Connect code and fixed message.
func classRefusal(ctx context.Context, err error) *connect.Error {
	switch {
	case errors.Is(err, fief.ErrUnauthenticated):
		return refusal(connect.CodeUnauthenticated, msgUnauthenticated, err)
	case errors.Is(err, fief.ErrForbidden):
		return refusal(connect.CodePermissionDenied, msgForbidden, err)
	case errors.Is(err, fief.ErrUnavailable) && ctx.Err() != nil:
		// The RPC ended (canceled, or past its deadline) while Fief was
		// waited for: Fief is not at fault. Connect maps a bare context
		// error so, but exports no function for it, and the cause must
		// stay reachable.
		code := connect.CodeCanceled
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			code = connect.CodeDeadlineExceeded
		}
		return refusal(code, ctx.Err().Error(), err)
	}
	return refusal(connect.CodeUnavailable, msgUnavailable, err)
}

// refusal returns a Connect error whose message is msg and whose cause,
// never sent, is cause.
func refusal(code connect.Code, msg string, cause error) *connect.Error {
	return connect.NewError(code, &fixedError{msg: msg, cause: cause})
}

// fixedError is an error whose text is a fixed message, hiding its cause
// from what Connect sends (the text of the error it wraps) while errors.Is
// and errors.As still reach it.
type fixedError struct {
	msg   string
	cause error
}

func (e *fixedError) Error() string { return e.msg }
func (e *fixedError) Unwrap() error { return e.cause }
