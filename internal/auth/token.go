package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultTokenTTL is how long a token lives: long enough for one push,
// short enough that a revoked grant stops working soon.
const DefaultTokenTTL = 5 * time.Minute

// Claims are a token's claims: the Docker token format's access list on
// top of the registered claims.
type Claims struct {
	jwt.RegisteredClaims
	Access []Scope `json:"access"`
	// Cred is the subject's credential stamp when the token was issued
	// (User.Cred); a token of a user is valid only while it is current.
	Cred string `json:"cred,omitempty"`
}

// Issuer signs and verifies tokens with one HMAC-SHA256 key.
type Issuer struct {
	key     []byte
	service string
	ttl     time.Duration
	now     func() time.Time
}

// NewIssuer returns an Issuer; key must have at least 32 bytes. service is
// the audience (the registry's service name in challenges).
func NewIssuer(key []byte, service string, ttl time.Duration) (*Issuer, error) {
	if len(key) < 32 {
		return nil, errors.New("token signing key must have at least 32 bytes")
	}
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	return &Issuer{key: key, service: service, ttl: ttl, now: time.Now}, nil
}

// Service is the audience tokens are issued for.
func (i *Issuer) Service() string { return i.service }

// Issue signs a token for subject, whose credential stamp is cred (""
// for an anonymous token), with the granted access.
func (i *Issuer) Issue(subject, cred string, access []Scope) (token string, expiresIn int, issuedAt time.Time, err error) {
	now := i.now().UTC().Truncate(time.Second)
	if access == nil {
		access = []Scope{}
	}
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    "skiff",
			Subject:   subject,
			Audience:  jwt.ClaimStrings{i.service},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)), // clock skew
			ExpiresAt: jwt.NewNumericDate(now.Add(i.ttl)),
		},
		Access: access,
		Cred:   cred,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(i.key)
	if err != nil {
		return "", 0, now, fmt.Errorf("sign token: %w", err)
	}
	return s, int(i.ttl.Seconds()), now, nil
}

// Verify checks a token's signature, algorithm, issuer, audience and
// lifetime, and returns its claims.
func (i *Issuer) Verify(token string) (Claims, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return i.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer("skiff"),
		jwt.WithAudience(i.service),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(i.now),
	)
	if err != nil {
		return Claims{}, fmt.Errorf("invalid token: %w", err)
	}
	return c, nil
}

// Principal returns what a verified token lets its bearer do.
func (c Claims) Principal() Principal {
	return Principal{Name: c.Subject, Token: true, Access: c.Access}
}
