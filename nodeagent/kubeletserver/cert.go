package kubeletserver

import (
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
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Files in Config.CertDir.
const (
	certFile = "kubelet.crt"
	keyFile  = "kubelet.key"
)

const (
	// certValidity is long because validity is not what makes the
	// certificate trusted: the API server pins it.
	certValidity = 10 * 365 * 24 * time.Hour
	// renewBefore is how long before its end a certificate is replaced at start.
	renewBefore = 30 * 24 * time.Hour
	// clockSkew backdates the certificate for clients whose clock is behind.
	clockSkew = 5 * time.Minute
)

// servingCert is the agent's TLS identity.
type servingCert struct {
	certPEM []byte
	keyPair tls.Certificate
}

// ensureServingCert loads the key and self-signed certificate from dir,
// creating them when missing, unreadable, near their end, or not issued
// for one of hosts (besides localhost, 127.0.0.1 and ::1).
func ensureServingCert(dir string, hosts []string, now time.Time, log *slog.Logger) (*servingCert, error) {
	if dir == "" {
		return nil, errors.New("no directory for the serving certificate (Config.CertDir)")
	}
	hosts = append(slices.Clone(hosts), "localhost", "127.0.0.1", "::1")
	certPath, keyPath := filepath.Join(dir, certFile), filepath.Join(dir, keyFile)

	cert, err := loadServingCert(certPath, keyPath)
	if err == nil {
		err = certProblem(cert.keyPair.Leaf, hosts, now)
	}
	if err == nil {
		return cert, nil
	}
	// Not an error: a fresh certificate replaces the old one, and the
	// agent publishes it on its Node.
	if errors.Is(err, fs.ErrNotExist) {
		log.Info("creating the serving certificate", "dir", dir)
	} else {
		log.Info("replacing the serving certificate", "dir", dir, "reason", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("serving certificate directory: %w", err)
	}
	certPEM, keyPEM, err := newSelfSignedCert(hosts, now)
	if err != nil {
		return nil, err
	}
	// The key first: a certificate on disk always has its key beside it.
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("saving the serving key: %w", err)
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("saving the serving certificate: %w", err)
	}
	return parseServingCert(certPEM, keyPEM)
}

func loadServingCert(certPath, keyPath string) (*servingCert, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	return parseServingCert(certPEM, keyPEM)
}

func parseServingCert(certPEM, keyPEM []byte) (*servingCert, error) {
	keyPair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	return &servingCert{certPEM: certPEM, keyPair: keyPair}, nil
}

// certProblem says why cert should be replaced, or nil.
func certProblem(cert *x509.Certificate, hosts []string, now time.Time) error {
	if now.Add(renewBefore).After(cert.NotAfter) {
		return fmt.Errorf("the serving certificate ends on %s", cert.NotAfter.Format(time.DateOnly))
	}
	for _, h := range hosts {
		if cert.VerifyHostname(h) != nil {
			return fmt.Errorf("the serving certificate is not issued for %s", h)
		}
	}
	return nil
}

// newSelfSignedCert creates an ECDSA P-256 key and a certificate for hosts
// signed by that key.
func newSelfSignedCert(hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("serving key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("serial number: %w", err)
	}
	name, _ := os.Hostname()
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: fmt.Sprintf("%s@%d", name, now.Unix())}, // as the kubelet names its own
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			template.IPAddresses = append(template.IPAddresses, ip)
		} else if h != "" {
			template.DNSNames = append(template.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("serving certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("serving key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}

// writeFileAtomic replaces path with data: a reader sees the old file or
// the new one, never a part.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
