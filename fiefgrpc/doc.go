// Package fiefgrpc protects gRPC services with Fief access tokens, and lets
// gRPC clients send them.
//
// On the server, an [Interceptor] authenticates every call with a
// [fief.Authenticator]: it reads the token from the "authorization"
// metadata ("Bearer <token>"), checks the requirements of the method called,
// and gives the handler a context holding the token's info
// ([fief.AccessTokenInfoFromContext]), the user's info on routes with
// [fief.LoadUserInfo] ([fief.UserInfoFromContext]) and the tenant of a
// multi-tenant Authenticator ([fief.TenantFromContext]). Each method has its
// requirements ([WithMethod], [WithService], [WithDefault]) or none
// ([WithPublic]); a method the Interceptor was told nothing about is refused.
// Refusals carry a status code and a fixed message, never an error's text:
//
//	codes.Unauthenticated   "unauthenticated"             no, malformed, invalid or expired token
//	codes.PermissionDenied  "permission denied"           a scope, the ACR or a permission is missing
//	codes.PermissionDenied  "permission denied: no authentication policy for this method"
//	codes.Unavailable       "authentication unavailable"  Fief cannot be used
//	codes.Canceled          "context canceled"            the call was canceled while Fief was waited for
//	codes.DeadlineExceeded  "context deadline exceeded"   the call's deadline passed meanwhile
//
// The last two are the status of the call's context
// ([google.golang.org/grpc/status.FromContextError]): a call that ends while
// the key set or the user's info is being fetched is not Fief's failure, and
// a client that retries Unavailable calls does not retry one it gave up on.
//
// Authorization metadata is read as the net/http middleware reads the
// Authorization header ([fief.Route.AuthenticateAuthorization]): several
// values, or a token longer than [fief.MaxTokenLength], are a malformed
// token, unauthenticated (anonymous on [fief.Optional] methods, like an
// invalid token). Refusals decided by the [fief.Authenticator] are logged as
// its [fief.WithLogger] says.
//
// On the client, [PerRPCCredentials] sends the token of an
// [oauth2.TokenSource] (such as [fief.Client.TokenSource], which refreshes
// it) with every call, over connections with transport security only;
// [InsecurePerRPCCredentials] also sends it over plaintext connections, for
// development on the loopback interface.
//
// A server:
//
//	auth, err := fief.NewAuthenticator(client)
//	...
//	fg, err := fiefgrpc.New(auth,
//		fiefgrpc.WithPublic(grpc_health_v1.Health_Check_FullMethodName),
//		fiefgrpc.WithMethod("/castles.v1.Castles/Delete", fief.RequirePermissions("castles:delete")),
//		fiefgrpc.WithService("castles.v1.Castles", fief.RequirePermissions("castles:read")),
//	)
//	...
//	srv := grpc.NewServer(append(fg.ServerOptions(), grpc.Creds(credentials.NewTLS(tlsConfig)))...)
//
// A client:
//
//	conn, err := grpc.NewClient(target,
//		grpc.WithTransportCredentials(credentials.NewClientTLSFromCert(nil, "")),
//		grpc.WithPerRPCCredentials(fiefgrpc.PerRPCCredentials(client.TokenSource(tokens, save))))
package fiefgrpc
