package trivy

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/tollgate-dev/tollgate/policies/vuln"
)

// trivyReport is what Tollgate reads of Trivy's JSON report (schema 2);
// other fields are ignored.
type trivyReport struct {
	SchemaVersion *int   `json:"SchemaVersion"`
	ArtifactName  string `json:"ArtifactName"`
	Metadata      struct {
		OS *struct {
			Family string `json:"Family"`
			Name   string `json:"Name"`
		} `json:"OS"`
		RepoDigests []string `json:"RepoDigests"`
	} `json:"Metadata"`
	Results []struct {
		Target          string            `json:"Target"`
		Class           string            `json:"Class"`
		Type            string            `json:"Type"`
		Packages        []json.RawMessage `json:"Packages"`
		Vulnerabilities []struct {
			VulnerabilityID  string `json:"VulnerabilityID"`
			PkgName          string `json:"PkgName"`
			InstalledVersion string `json:"InstalledVersion"`
			FixedVersion     string `json:"FixedVersion"`
			Severity         string `json:"Severity"`
			Title            string `json:"Title"`
			PrimaryURL       string `json:"PrimaryURL"`
		} `json:"Vulnerabilities"`
	} `json:"Results"`
}

// Parse reads Trivy's JSON report of an image (`trivy image --format
// json`, schema 2) into a Report: the OS, the number of packages, every
// vulnerability (sorted), and the digest of the first RepoDigests entry.
// Unknown fields are ignored; a malformed report is an error naming the
// field.
func Parse(data []byte) (*vuln.Report, error) {
	tr, err := decode(data)
	if err != nil {
		return nil, err
	}
	rep := &vuln.Report{Image: tr.ArtifactName, Vulnerabilities: []vuln.Vulnerability{}}
	if os := tr.Metadata.OS; os != nil {
		rep.OS = strings.TrimSpace(os.Family + " " + os.Name)
	}
	for i, d := range tr.Metadata.RepoDigests {
		_, digest, ok := strings.Cut(d, "@")
		if !ok || !strings.HasPrefix(digest, "sha256:") {
			return nil, fmt.Errorf("field Metadata.RepoDigests[%d] %q: want REPOSITORY@sha256:HEX", i, d)
		}
		if i == 0 {
			rep.Digest = digest
		}
	}
	for i := range tr.Results {
		res := &tr.Results[i]
		rep.Packages += len(res.Packages)
		for j, v := range res.Vulnerabilities {
			field := fmt.Sprintf("field Results[%d].Vulnerabilities[%d]", i, j)
			switch {
			case v.VulnerabilityID == "":
				return nil, fmt.Errorf("%s.VulnerabilityID is empty", field)
			case v.PkgName == "":
				return nil, fmt.Errorf("%s.PkgName is empty (%s)", field, v.VulnerabilityID)
			case vuln.SeverityRank(v.Severity) < 0:
				return nil, fmt.Errorf("%s.Severity %q (%s): want one of %s", field, v.Severity, v.VulnerabilityID, strings.Join(vuln.Severities, ", "))
			}
			rep.Vulnerabilities = append(rep.Vulnerabilities, vuln.Vulnerability{
				ID: v.VulnerabilityID, Package: v.PkgName, Installed: v.InstalledVersion, Fixed: v.FixedVersion,
				Severity: strings.ToUpper(v.Severity), Title: v.Title, Target: res.Target, Class: res.Class, Type: res.Type,
				URL: advisoryURL(v.PrimaryURL),
			})
		}
	}
	rep.Sort()
	return rep, nil
}

func decode(data []byte) (*trivyReport, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var tr trivyReport
	if err := dec.Decode(&tr); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return nil, fmt.Errorf("field %s: %s where %s was expected (byte %d)", te.Field, te.Value, te.Type, te.Offset)
		case errors.As(err, &se):
			return nil, fmt.Errorf("not JSON at byte %d: %w", se.Offset, err)
		case len(bytes.TrimSpace(data)) == 0:
			return nil, errors.New("empty (trivy wrote nothing)")
		}
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON document (byte %d)", dec.InputOffset())
	}
	switch {
	case tr.SchemaVersion == nil:
		return nil, errors.New("field SchemaVersion is missing: not a trivy JSON report")
	case *tr.SchemaVersion != 2:
		return nil, fmt.Errorf("field SchemaVersion %d: Tollgate reads schema 2", *tr.SchemaVersion)
	}
	return &tr, nil
}

// imageRef is a parsed image reference.
type imageRef struct {
	ref name.Reference
}

// parseRef parses an image reference as a container runtime does
// (docker.io by default).
func parseRef(image string) (imageRef, error) {
	if image == "" || strings.HasPrefix(image, "-") || strings.ContainsAny(image, " \t\r\n") {
		return imageRef{}, fmt.Errorf("image reference %q: not a reference", image)
	}
	ref, err := name.ParseReference(image)
	if err != nil {
		return imageRef{}, fmt.Errorf("image reference %q: %w", image, err)
	}
	return imageRef{ref: ref}, nil
}

// digestOf is the digest results are keyed by: the reference's own when it
// names one (Trivy's must agree), else the one Trivy resolved.
func digestOf(ref imageRef, fromTrivy string) (string, error) {
	if d, ok := ref.ref.(name.Digest); ok {
		if fromTrivy != "" && fromTrivy != d.DigestStr() {
			return "", fmt.Errorf("trivy scanned %s, not the digest asked for (%s)", fromTrivy, d.DigestStr())
		}
		return d.DigestStr(), nil
	}
	if fromTrivy == "" {
		return "", errors.New("trivy's report names no repository digest (Metadata.RepoDigests) for a reference by tag")
	}
	return fromTrivy, nil
}

// writeDockerConfig writes dir/config.json (0600) holding the credentials
// keychain gives for ref's registry, in the docker config format Trivy
// reads; nothing when there are none.
func writeDockerConfig(ctx context.Context, dir string, ref imageRef, keychain authn.Keychain) error {
	if keychain == nil || ref.ref == nil {
		return nil
	}
	reg := ref.ref.Context().Registry
	auth, err := authn.Resolve(ctx, keychain, reg)
	if err != nil {
		return fmt.Errorf("registry credentials for %s: %w", reg.RegistryStr(), err)
	}
	if auth == authn.Anonymous {
		return nil
	}
	cfg, err := authn.Authorization(ctx, auth)
	if err != nil {
		return fmt.Errorf("registry credentials for %s: %w", reg.RegistryStr(), err)
	}
	entry := map[string]string{}
	switch {
	case cfg.Username != "" || cfg.Password != "":
		entry["auth"] = base64.StdEncoding.EncodeToString([]byte(cfg.Username + ":" + cfg.Password))
	case cfg.Auth != "":
		entry["auth"] = cfg.Auth
	}
	if cfg.IdentityToken != "" {
		entry["identitytoken"] = cfg.IdentityToken
	}
	if cfg.RegistryToken != "" {
		entry["registrytoken"] = cfg.RegistryToken
	}
	if len(entry) == 0 {
		return nil
	}
	key := reg.RegistryStr()
	if key == name.DefaultRegistry {
		key = "https://index.docker.io/v1/"
	}
	data, err := json.Marshal(map[string]any{"auths": map[string]any{key: entry}})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600)
}

// boundedBuffer keeps at most max bytes; past that it drops the rest,
// records the overflow and calls overflow (which stops the writer).
type boundedBuffer struct {
	buf      []byte
	max      int64
	over     bool
	overflow func()
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if b.over {
		return len(p), nil
	}
	if int64(len(b.buf))+int64(len(p)) > b.max {
		b.over = true
		b.buf = nil
		b.overflow()
		return len(p), nil
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// quote is ": " and the last lines written, for an error message; "" when
// nothing was written.
func (t *tailBuffer) quote() string {
	var lines []string
	for _, l := range strings.Split(string(t.buf), "\n") {
		// Trivy's log lines: TIME<tab>LEVEL<tab>message; the time is noise.
		if ts, rest, ok := strings.Cut(l, "\t"); ok && len(ts) >= 20 && ts[4] == '-' && ts[10] == 'T' {
			l = rest
		}
		if l = strings.TrimSpace(strings.ReplaceAll(l, "\t", " ")); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return ""
	}
	if len(lines) > 6 {
		lines = lines[len(lines)-6:]
	}
	return ": " + strings.Join(lines, " | ")
}

// advisoryURL keeps an advisory link only when it is an absolute http(s)
// URL: it is written into SARIF, which code hosts render as a link, and a
// database is input like any other.
func advisoryURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(s) > 2048 {
		return ""
	}
	return s
}
