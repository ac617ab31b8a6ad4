package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Files in the PKI directory.
const (
	caCertFile      = "ca.crt"
	caKeyFile       = "ca.key"
	servingCertFile = "serving.crt"
	servingKeyFile  = "serving.key"
)

const (
	caCommonName      = "kubelite-ca"
	servingCommonName = "kubelite-apiserver"

	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
	// renewBefore is how long before expiry the serving certificate is re-issued.
	renewBefore = 30 * 24 * time.Hour
	// clockSkew backdates certificates so that a node whose clock is a little
	// behind the server's still accepts them.
	clockSkew = 5 * time.Minute
)

// PKI is the cluster's certificate authority together with the API server's
// serving certificate. It is read-only after EnsurePKI and safe for
// concurrent use.
type PKI struct {
	// CACertPEM is the CA certificate, for kubeconfigs and joining nodes.
	CACertPEM []byte

	caCert  *x509.Certificate
	caKey   crypto.Signer
	serving tls.Certificate
}

// ClusterSANs returns the names under which pods reach the API server
// through the `kubernetes` Service: its cluster IP (the first address of the
// service range, e.g. 10.96.0.1) and its DNS names in clusterDomain
// (e.g. "cluster.local"). Pass them to EnsurePKI along with the node's own
// addresses.
func ClusterSANs(serviceIP net.IP, clusterDomain string) []string {
	return []string{
		serviceIP.String(),
		"kubernetes",
		"kubernetes.default",
		"kubernetes.default.svc",
		"kubernetes.default.svc." + clusterDomain,
	}
}

// EnsurePKI loads the PKI from dir, creating what is missing.
//
// On first start it creates dir (mode 0700), a self-signed ECDSA P-256 CA
// valid for 10 years, and a serving certificate valid for 1 year whose
// subject alternative names are hosts (IP addresses and DNS names) plus
// 127.0.0.1, ::1 and localhost. Afterwards it reuses both, except that the
// serving certificate is re-issued from the same CA when it lacks one of
// the requested names (a new node address), expires within 30 days, or
// cannot be read. The CA is never replaced: if ca.crt exists but ca.key
// does not, EnsurePKI fails rather than orphan every certificate issued so far.
func EnsurePKI(dir string, hosts []string) (*PKI, error) {
	return ensurePKI(dir, hosts, time.Now())
}

// ensurePKI is EnsurePKI as seen at time now.
func ensurePKI(dir string, hosts []string, now time.Time) (*PKI, error) {
	sans, err := parseSANs(append(slices.Clone(hosts), "127.0.0.1", "::1", "localhost"))
	if err != nil {
		return nil, fmt.Errorf("serving certificate names: %w", err)
	}
	if err := ensurePrivateDir(dir); err != nil {
		return nil, fmt.Errorf("pki %s: %w", dir, err)
	}
	p, err := ensureCA(dir, now)
	if err != nil {
		return nil, err
	}
	if err := p.ensureServingCert(dir, sans, now); err != nil {
		return nil, err
	}
	return p, nil
}

// ensureCA loads the CA from dir or, if there is no ca.crt, creates one.
func ensureCA(dir string, now time.Time) (*PKI, error) {
	certPath := filepath.Join(dir, caCertFile)
	keyPath := filepath.Join(dir, caKeyFile)

	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		return createCA(certPath, keyPath, now)
	}
	if err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s exists but %s is missing: restore the CA key (the CA is never replaced, "+
			"since nodes and kubeconfigs trust it): %w", certPath, keyPath, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	p, err := newPKI(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA from %s: %w", dir, err)
	}
	return p, nil
}

// createCA creates a new CA and saves it. The key is written before the
// certificate, so a crash in between leaves no ca.crt and the next start
// simply creates a fresh CA: nothing can have trusted the first one yet.
func createCA(certPath, keyPath string, now time.Time) (*PKI, error) {
	certPEM, keyPEM, err := newCA(now)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(keyPath, keyPEM, secretMode); err != nil {
		return nil, fmt.Errorf("save CA: %w", err)
	}
	if err := writeFileAtomic(certPath, certPEM, publicMode); err != nil {
		return nil, fmt.Errorf("save CA: %w", err)
	}
	slog.Info("created cluster CA", "cert", certPath)
	return newPKI(certPEM, keyPEM)
}

// newPKI builds a PKI (without serving certificate yet) from a CA key pair.
func newPKI(certPEM, keyPEM []byte) (*PKI, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM) // also checks that the key matches
	if err != nil {
		return nil, fmt.Errorf("CA key pair: %w", err)
	}
	if !pair.Leaf.IsCA {
		return nil, errors.New("CA certificate is not a CA")
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("CA key of type %T cannot sign", pair.PrivateKey)
	}
	return &PKI{CACertPEM: certPEM, caCert: pair.Leaf, caKey: signer}, nil
}

// newCA creates a self-signed CA certificate and its key, PEM-encoded.
func newCA(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := newSerialNumber()
	if err != nil {
		return nil, nil, err
	}
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: caCommonName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // the CA signs leaf certificates only
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("self-sign CA: %w", err)
	}
	keyPEM, err = encodePrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCertificate(der), keyPEM, nil
}

// ensureServingCert loads the serving certificate from dir, re-issuing it if
// it is missing, unreadable, not from this CA, about to expire, or lacks
// one of sans.
func (p *PKI) ensureServingCert(dir string, sans subjectAltNames, now time.Time) error {
	certPath := filepath.Join(dir, servingCertFile)
	keyPath := filepath.Join(dir, servingKeyFile)

	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err == nil {
		err = p.servingCertProblem(pair.Leaf, sans, now)
		if err == nil {
			p.serving = pair
			return nil
		}
	}
	reason := err.Error()
	if errors.Is(err, fs.ErrNotExist) {
		reason = "first start"
	}
	slog.Info("issuing API server serving certificate", "cert", certPath, "reason", reason)

	certPEM, keyPEM, err := p.issue(leafTemplate(servingCommonName, nil, x509.ExtKeyUsageServerAuth, sans, now))
	if err != nil {
		return fmt.Errorf("issue serving certificate: %w", err)
	}
	// A crash between these two writes leaves a mismatched pair, which
	// the next start cannot load and therefore re-issues.
	if err := writeFileAtomic(keyPath, keyPEM, secretMode); err != nil {
		return fmt.Errorf("save serving certificate: %w", err)
	}
	if err := writeFileAtomic(certPath, certPEM, publicMode); err != nil {
		return fmt.Errorf("save serving certificate: %w", err)
	}
	if p.serving, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return fmt.Errorf("load new serving certificate: %w", err)
	}
	return nil
}

// servingCertProblem says why cert cannot serve sans at time now, or
// returns nil if it can.
func (p *PKI) servingCertProblem(cert *x509.Certificate, sans subjectAltNames, now time.Time) error {
	_, err := cert.Verify(x509.VerifyOptions{
		Roots:       p.CertPool(),
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("not valid under this CA: %w", err)
	}
	if cert.NotAfter.Sub(now) < renewBefore {
		return fmt.Errorf("expires at %s", cert.NotAfter.Format(time.RFC3339))
	}
	if missing := sans.missingFrom(cert); len(missing) > 0 {
		return fmt.Errorf("lacks %s", strings.Join(missing, ", "))
	}
	return nil
}

// ServingTLSConfig is the API server's TLS configuration (TLS 1.2 or later).
func (p *PKI) ServingTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{p.serving},
	}
}

// CertPool returns a new pool holding the CA, for clients of the API server
// and for servers that verify client certificates.
func (p *PKI) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.caCert)
	return pool
}

// IssueServingCert issues a server certificate for a node agent's HTTPS API,
// with common name name and subject alternative names hosts (IP addresses
// and DNS names; at least one).
func (p *PKI) IssueServingCert(name string, hosts []string) (certPEM, keyPEM []byte, err error) {
	if name == "" {
		return nil, nil, errors.New("issue serving certificate: empty name")
	}
	if len(hosts) == 0 {
		return nil, nil, fmt.Errorf("issue serving certificate for %q: no hosts", name)
	}
	sans, err := parseSANs(hosts)
	if err != nil {
		return nil, nil, fmt.Errorf("issue serving certificate for %q: %w", name, err)
	}
	return p.issue(leafTemplate(name, nil, x509.ExtKeyUsageServerAuth, sans, time.Now()))
}

// IssueClientCert issues a client certificate with which the API server (or
// another component) proves itself to a node agent. As in Kubernetes, the
// common name is the user name and the organizations are its groups.
func (p *PKI) IssueClientCert(name string, groups []string) (certPEM, keyPEM []byte, err error) {
	if name == "" {
		return nil, nil, errors.New("issue client certificate: empty name")
	}
	return p.issue(leafTemplate(name, groups, x509.ExtKeyUsageClientAuth, subjectAltNames{}, time.Now()))
}

// leafTemplate describes a one-year certificate for one purpose.
func leafTemplate(commonName string, organizations []string, usage x509.ExtKeyUsage, sans subjectAltNames, now time.Time) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: commonName, Organization: organizations},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(leafValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		BasicConstraintsValid: true,
		IPAddresses:           sans.ips,
		DNSNames:              sans.dnsNames,
	}
}

// issue signs template for a new ECDSA P-256 key with the CA.
func (p *PKI) issue(template *x509.Certificate) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	if template.SerialNumber, err = newSerialNumber(); err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, template, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate: %w", err)
	}
	keyPEM, err = encodePrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCertificate(der), keyPEM, nil
}

// newSerialNumber returns a random 128-bit serial number, as RFC 5280 advises
// for CAs that keep no record of what they issued.
func newSerialNumber() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return serial, nil
}

func encodeCertificate(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodePrivateKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// subjectAltNames is a certificate's set of IP addresses and DNS names.
type subjectAltNames struct {
	ips      []net.IP
	dnsNames []string
}

// parseSANs sorts hosts into IP addresses and DNS names, dropping duplicates.
// DNS names are compared case-insensitively and kept in lower case.
func parseSANs(hosts []string) (subjectAltNames, error) {
	var sans subjectAltNames
	seenIPs := make(map[netip.Addr]bool)
	seenNames := make(map[string]bool)
	for _, host := range hosts {
		host = strings.TrimSpace(host)
		if host == "" {
			return subjectAltNames{}, errors.New("empty host name")
		}
		if addr, err := netip.ParseAddr(host); err == nil {
			if addr.Zone() != "" {
				return subjectAltNames{}, fmt.Errorf("host %q: an address with a zone cannot be a certificate name", host)
			}
			if !seenIPs[addr] {
				seenIPs[addr] = true
				sans.ips = append(sans.ips, net.IP(addr.AsSlice()))
			}
			continue
		}
		name := strings.ToLower(host)
		if !seenNames[name] {
			seenNames[name] = true
			sans.dnsNames = append(sans.dnsNames, name)
		}
	}
	return sans, nil
}

// missingFrom lists the names in sans that cert does not carry.
func (sans subjectAltNames) missingFrom(cert *x509.Certificate) []string {
	var missing []string
	for _, ip := range sans.ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			missing = append(missing, ip.String())
		}
	}
	for _, name := range sans.dnsNames {
		if !slices.ContainsFunc(cert.DNSNames, func(have string) bool { return strings.EqualFold(have, name) }) {
			missing = append(missing, name)
		}
	}
	return missing
}
