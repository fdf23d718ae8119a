// Package fiefconnect authenticates Connect RPCs (connectrpc.com/connect)
// with Fief access tokens, on both sides.
//
// On the server, an [Interceptor] reads the Bearer token of each RPC's
// Authorization header, authenticates it with the transport-neutral core
// of package fief ([fief.Route.Authenticate]) on the route of the RPC's
// procedure, and passes the derived context to the handler, which reads
// [fief.AccessTokenInfoFromContext] (and [fief.UserInfoFromContext],
// [fief.TenantFromContext]). Refusals are connect.CodeUnauthenticated,
// connect.CodePermissionDenied or connect.CodeUnavailable with fixed
// messages, or connect.CodeCanceled and connect.CodeDeadlineExceeded when
// the RPC ends while Fief is waited for. Procedures that are not configured are refused: the default is
// closed. Install it as an interceptor or, to refuse before the request
// message is decoded, as a request gate ([Interceptor.Gate]).
//
// On the client, a [ClientInterceptor] adds the token of an
// oauth2.TokenSource (a Fief session's, [fief.Client.TokenSource]) to every
// request, and refuses to send it over plain http unless
// [AllowPlaintextHTTP] says so.
//
//	interceptor, err := fiefconnect.NewInterceptor(auth,
//		fiefconnect.WithProcedure(castlesv1connect.CastlesGetProcedure, fief.RequireScopes("castles:read")),
//		fiefconnect.WithProcedure(castlesv1connect.CastlesBuildProcedure, fief.RequirePermissions("castles:write")),
//		fiefconnect.WithPublic(castlesv1connect.CastlesStatusProcedure),
//	)
//	if err != nil {
//		log.Fatal(err)
//	}
//	mux.Handle(castlesv1connect.NewCastlesHandler(svc, connect.WithRequestGate(interceptor.Gate)))
//
//	// And a client, with a Fief session's tokens:
//	ci, err := fiefconnect.NewClientInterceptor("https://castles.example", client.TokenSource(tokens, save))
//	castles := castlesv1connect.NewCastlesClient(http.DefaultClient, "https://castles.example", connect.WithInterceptors(ci))
package fiefconnect
