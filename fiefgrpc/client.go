package fiefgrpc

import (
	"context"

	"golang.org/x/oauth2"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/oauth"
)

// PerRPCCredentials returns the credentials that send the access token of
// ts with every call, as "authorization: Bearer <token>", for
// [grpc.WithPerRPCCredentials] or [grpc.PerRPCCredentials]. ts is asked for
// a token on every call: give one that caches and renews it, such as
// [fief.Client.TokenSource] or an [oauth2.ReuseTokenSource].
//
// They require transport security: a connection without it (insecure
// credentials) cannot be created with them ([grpc.NewClient] fails), and a
// call given them on such a connection fails without sending the token. They
// are grpc-go's [oauth.TokenSource]; for development over plaintext on the
// loopback interface, see [InsecurePerRPCCredentials]. PerRPCCredentials
// panics if ts is nil.
func PerRPCCredentials(ts oauth2.TokenSource) credentials.PerRPCCredentials {
	if ts == nil {
		panic("fiefgrpc: PerRPCCredentials: nil TokenSource")
	}
	return oauth.TokenSource{TokenSource: ts}
}

// InsecurePerRPCCredentials returns credentials that send the access token
// of ts with every call as [PerRPCCredentials] does, but over any
// connection, plaintext ones included, where anyone on the path can read
// the token and use it until it expires. Use them only where the
// connection cannot be read by others: the loopback interface in
// development, a Unix socket, a sidecar proxy that adds TLS on the same
// host. InsecurePerRPCCredentials panics if ts is nil.
func InsecurePerRPCCredentials(ts oauth2.TokenSource) credentials.PerRPCCredentials {
	if ts == nil {
		panic("fiefgrpc: InsecurePerRPCCredentials: nil TokenSource")
	}
	return insecureTokenSource{ts}
}

type insecureTokenSource struct{ ts oauth2.TokenSource }

func (s insecureTokenSource) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	token, err := s.ts.Token()
	if err != nil {
		return nil, err
	}
	return map[string]string{"authorization": token.Type() + " " + token.AccessToken}, nil
}

func (insecureTokenSource) RequireTransportSecurity() bool { return false }
