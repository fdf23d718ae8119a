package fiefgrpc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/fief-go/fief"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The fixed messages of the refusals.
const (
	msgUnauthenticated = "unauthenticated"
	msgForbidden       = "permission denied"
	msgUnavailable     = "authentication unavailable"
	msgNoPolicy        = "permission denied: no authentication policy for this method"
)

// Interceptor authenticates the calls of a gRPC server with a
// [fief.Authenticator], each method as its [Option] says. Create it with
// [New] and install both of its interceptors, with [Interceptor.ServerOptions]
// or with [Interceptor.Unary] and [Interceptor.Stream]. An Interceptor is
// safe for concurrent use.
type Interceptor struct {
	methods  map[string]rule // by full method name
	services map[string]rule // by service name
	def      *rule           // nil: methods not listed are refused
}

// rule is what a method needs: authentication by route, or nothing (public)
// when route is nil.
type rule struct{ route *fief.Route }

// Option configures an [Interceptor]: which methods need what.
type Option func(*config) error

type config struct {
	methods  map[string]policy
	services map[string]policy
	def      *policy
}

// policy is an option's word on a method, a service or the default.
type policy struct {
	public bool
	opts   []fief.RouteOption
}

// WithMethod sets the requirements of the method fullMethod, named as gRPC
// names it in [grpc.UnaryServerInfo] ("/package.Service/Method", such as
// the generated constants grpc_health_v1.Health_Check_FullMethodName):
// the route of opts ([fief.RequireScopes], [fief.RequireACR],
// [fief.RequirePermissions], [fief.Optional], [fief.LoadUserInfo],
// [fief.Refresh]), none for any valid token. A method's own rule comes
// before its service's ([WithService]) and the default ([WithDefault]).
// Naming a method twice, in WithMethod or [WithPublic], is an error.
func WithMethod(fullMethod string, opts ...fief.RouteOption) Option {
	return func(c *config) error {
		if err := checkMethod("WithMethod", fullMethod); err != nil {
			return err
		}
		if err := checkRouteOptions(fmt.Sprintf("WithMethod(%q)", fullMethod), opts); err != nil {
			return err
		}
		return c.addMethod("WithMethod", fullMethod, policy{opts: opts})
	}
}

// WithService sets the requirements of every method of the service
// ("package.Service", such as grpc_health_v1.Health_ServiceDesc.ServiceName)
// that has none of its own ([WithMethod], [WithPublic]), as WithMethod does.
// Naming a service twice is an error.
func WithService(service string, opts ...fief.RouteOption) Option {
	return func(c *config) error {
		if err := checkName(service); err != nil {
			return fmt.Errorf("fiefgrpc: WithService(%q): %w", service, err)
		}
		if err := checkRouteOptions(fmt.Sprintf("WithService(%q)", service), opts); err != nil {
			return err
		}
		if _, dup := c.services[service]; dup {
			return fmt.Errorf("fiefgrpc: WithService: service %q named twice", service)
		}
		c.services[service] = policy{opts: opts}
		return nil
	}
}

// WithPublic makes the methods fullMethods (named as for [WithMethod])
// public: they run without authentication, whatever the call carries, and
// their handlers see no token info. For health checks and the like. A
// method whose callers may be anonymous but whose handler wants to know
// who calls when a token is given is not public: give it [fief.Optional]
// with WithMethod.
func WithPublic(fullMethods ...string) Option {
	return func(c *config) error {
		if len(fullMethods) == 0 {
			return errors.New("fiefgrpc: WithPublic: no method")
		}
		for _, m := range fullMethods {
			if err := checkMethod("WithPublic", m); err != nil {
				return err
			}
			if err := c.addMethod("WithPublic", m, policy{public: true}); err != nil {
				return err
			}
		}
		return nil
	}
}

// WithDefault sets the requirements of the methods that no other option
// names, as [WithMethod] does. Without it, such a method is refused with
// codes.PermissionDenied, whatever the call carries, before any
// authentication, and its handler never runs: a method added to a server is
// not reachable until its requirements are said. PermissionDenied, and not
// Unauthenticated, because no token would let the call through: a client
// that answers Unauthenticated by fetching a new token would retry in vain.
// WithDefault also covers the methods of a grpc.UnknownServiceHandler.
// Giving WithDefault twice is an error.
func WithDefault(opts ...fief.RouteOption) Option {
	return func(c *config) error {
		if c.def != nil {
			return errors.New("fiefgrpc: WithDefault given twice")
		}
		if err := checkRouteOptions("WithDefault", opts); err != nil {
			return err
		}
		c.def = &policy{opts: opts}
		return nil
	}
}

func (c *config) addMethod(fn, fullMethod string, p policy) error {
	if _, dup := c.methods[fullMethod]; dup {
		return fmt.Errorf("fiefgrpc: %s: method %q named twice", fn, fullMethod)
	}
	c.methods[fullMethod] = p
	return nil
}

// checkMethod checks a full method name: "/service/method".
func checkMethod(fn, fullMethod string) error {
	service, method, ok := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	switch {
	case !strings.HasPrefix(fullMethod, "/") || !ok:
		return fmt.Errorf(`fiefgrpc: %s(%q): not a full method name "/package.Service/Method"`, fn, fullMethod)
	case checkName(service) != nil || checkName(method) != nil:
		return fmt.Errorf(`fiefgrpc: %s(%q): not a full method name "/package.Service/Method"`, fn, fullMethod)
	}
	return nil
}

// checkName checks the name of a service or a method: not empty, no
// slash, no white space or control character.
func checkName(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	if strings.ContainsFunc(name, func(r rune) bool { return r == '/' || unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return errors.New("a slash, white space or a control character in the name")
	}
	return nil
}

// checkRouteOptions refuses nil options, on which [fief.Authenticator.Route]
// would panic.
func checkRouteOptions(what string, opts []fief.RouteOption) error {
	for _, o := range opts {
		if r, isReq := o.(fief.Requirement); o == nil || (isReq && r == nil) {
			return fmt.Errorf("fiefgrpc: %s: nil route option", what)
		}
	}
	return nil
}

// New returns an Interceptor that authenticates calls with auth as opts
// say. Options are checked, and every method's [fief.Route] is built, here.
// Without options, every method is refused: give [WithDefault] to
// authenticate every method alike.
func New(auth *fief.Authenticator, opts ...Option) (*Interceptor, error) {
	if auth == nil {
		return nil, errors.New("fiefgrpc: New: nil authenticator")
	}
	c := config{methods: map[string]policy{}, services: map[string]policy{}}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("fiefgrpc: New: nil option")
		}
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	compile := func(p policy) rule {
		if p.public {
			return rule{}
		}
		return rule{route: auth.Route(p.opts...)}
	}
	i := &Interceptor{methods: make(map[string]rule, len(c.methods)), services: make(map[string]rule, len(c.services))}
	for m, p := range c.methods {
		i.methods[m] = compile(p)
	}
	for s, p := range c.services {
		i.services[s] = compile(p)
	}
	if c.def != nil {
		r := compile(*c.def)
		i.def = &r
	}
	return i, nil
}

// ServerOptions returns the server options that install both of the
// Interceptor's interceptors, for unary and for streaming calls, after
// the interceptors of the options before them:
//
//	srv := grpc.NewServer(fg.ServerOptions()...)
//
// Install both: a server with the unary interceptor only leaves its
// streaming methods unprotected.
func (i *Interceptor) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(i.Unary()), grpc.ChainStreamInterceptor(i.Stream())}
}

// Unary returns the interceptor of unary calls. It authenticates the call
// as the method's rule says ([fief.Route.Authenticate]) and runs the
// handler with the derived context, or refuses the call (see the package
// documentation) without running it.
func (i *Interceptor) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := i.authenticate(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// Stream returns the interceptor of streaming calls. It authenticates the
// call as [Interceptor.Unary] does, once when the stream opens, and runs the
// handler with a stream whose Context is the derived context. It also
// guards the server's grpc.UnknownServiceHandler, if any.
func (i *Interceptor) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := i.authenticate(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		if ctx != ss.Context() {
			ss = &serverStream{ServerStream: ss, ctx: ctx}
		}
		return handler(srv, ss)
	}
}

// serverStream is a stream with the derived context.
type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *serverStream) Context() context.Context { return s.ctx }

// authenticate returns the context of a call to fullMethod, or the status
// error that refuses it.
func (i *Interceptor) authenticate(ctx context.Context, fullMethod string) (context.Context, error) {
	r, ok := i.rule(fullMethod)
	switch {
	case !ok:
		return ctx, status.Error(codes.PermissionDenied, msgNoPolicy)
	case r.route == nil:
		return ctx, nil // public
	}
	// The core reads the metadata as BearerToken reads a header: several
	// values, or a token too large, are refused as malformed (anonymous on
	// an Optional method, like an invalid token), and logged.
	out, err := r.route.AuthenticateAuthorization(ctx, metadata.ValueFromIncomingContext(ctx, "authorization"))
	switch {
	case err == nil:
		return out, nil
	case errors.Is(err, fief.ErrUnauthenticated):
		return ctx, status.Error(codes.Unauthenticated, msgUnauthenticated)
	case errors.Is(err, fief.ErrForbidden):
		return ctx, status.Error(codes.PermissionDenied, msgForbidden)
	case errors.Is(err, fief.ErrUnavailable) && ctx.Err() != nil:
		// The call ended (canceled, or past its deadline) while Fief was
		// waited for: Fief is not at fault, and a client that retries on
		// Unavailable must not retry a call it gave up on.
		return ctx, status.FromContextError(ctx.Err()).Err()
	}
	return ctx, status.Error(codes.Unavailable, msgUnavailable)
}

// rule returns the rule of fullMethod: its own, its service's or the
// default; ok is false when there is none.
func (i *Interceptor) rule(fullMethod string) (r rule, ok bool) {
	if r, ok := i.methods[fullMethod]; ok {
		return r, true
	}
	if len(i.services) > 0 {
		if service, _, found := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/"); found {
			if r, ok := i.services[service]; ok {
				return r, true
			}
		}
	}
	if i.def != nil {
		return *i.def, true
	}
	return rule{}, false
}
