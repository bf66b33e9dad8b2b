// Command trivy-testdb writes a small Trivy vulnerability database from a
// JSON file of advisories, so tests can scan images against a database
// whose every entry they know. It stores the advisories with trivy-db's own
// packages (pkg/db, pkg/metadata, the vulnsrc bucket names), the way
// trivy-db's builders store Debian, Alpine and GitHub Security Advisory
// data, then finishes the database as trivy-db's build does (advisory
// details copied into their buckets, vulnerability records merged, the
// working buckets dropped) and packs trivy.db and metadata.json as
// db.tar.gz, the layer Trivy downloads.
//
//	trivy-testdb advisories.json out/db.tar.gz
//
// The input:
//
//	{
//	  "updatedAt": "2026-12-05T00:00:00Z", "nextUpdate": "2026-12-06T00:00:00Z",
//	  "advisories": [
//	    {"ecosystem": "debian", "release": "12", "package": "openssl",
//	     "id": "CVE-2026-0001", "fixed": "3.0.15-1~deb12u1", "severity": "HIGH", "title": "..."},
//	    {"ecosystem": "go", "package": "golang.org/x/text",
//	     "id": "GHSA-...", "vulnerable": ["<0.3.8"], "patched": ["0.3.8"], "severity": "MEDIUM"}
//	  ]
//	}
//
// ecosystem is debian or alpine (with release: Debian's major version,
// Alpine's minor line such as 3.20), or go or npm (GitHub Security
// Advisories). An OS advisory without "fixed" affects every version.
package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
	"github.com/aquasecurity/trivy-db/pkg/types"
	"github.com/aquasecurity/trivy-db/pkg/vulnsrc/bucket"
	"github.com/aquasecurity/trivy-db/pkg/vulnsrc/vulnerability"
	bolt "go.etcd.io/bbolt"
)

// Input is the advisories file.
type Input struct {
	UpdatedAt  time.Time  `json:"updatedAt"`
	NextUpdate time.Time  `json:"nextUpdate"`
	Advisories []Advisory `json:"advisories"`
}

// Advisory is one vulnerability of one package in one ecosystem.
type Advisory struct {
	Ecosystem  string   `json:"ecosystem"`
	Release    string   `json:"release"`
	Package    string   `json:"package"`
	ID         string   `json:"id"`
	Fixed      string   `json:"fixed"`
	Vulnerable []string `json:"vulnerable"`
	Patched    []string `json:"patched"`
	Severity   string   `json:"severity"`
	Title      string   `json:"title"`
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "trivy-testdb:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: trivy-testdb ADVISORIES.json OUT.tar.gz")
	}
	in, err := readInput(args[0])
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "trivy-testdb-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(work) }()
	if err := build(work, in); err != nil {
		return err
	}
	return pack(work, args[1])
}

func readInput(path string) (*Input, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var in Input
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if in.UpdatedAt.IsZero() {
		in.UpdatedAt = time.Now().UTC()
	}
	if in.NextUpdate.IsZero() {
		in.NextUpdate = in.UpdatedAt.Add(24 * time.Hour)
	}
	for i, a := range in.Advisories {
		if err := a.validate(); err != nil {
			return nil, fmt.Errorf("%s: advisories[%d]: %w", path, i, err)
		}
	}
	return &in, nil
}

func (a *Advisory) validate() error {
	switch {
	case a.Package == "":
		return errors.New("package is required")
	case a.ID == "":
		return errors.New("id is required")
	}
	if _, err := types.NewSeverity(strings.ToUpper(a.Severity)); err != nil {
		return fmt.Errorf("severity %q: want one of %s", a.Severity, strings.Join(types.SeverityNames, ", "))
	}
	switch a.Ecosystem {
	case "debian", "alpine":
		if a.Release == "" {
			return fmt.Errorf("release is required for %s", a.Ecosystem)
		}
		if len(a.Vulnerable)+len(a.Patched) > 0 {
			return fmt.Errorf("%s advisories take fixed, not vulnerable or patched", a.Ecosystem)
		}
	case "go", "npm":
		if len(a.Vulnerable) == 0 {
			return fmt.Errorf("vulnerable is required for %s", a.Ecosystem)
		}
	default:
		return fmt.Errorf("ecosystem %q: want debian, alpine, go or npm", a.Ecosystem)
	}
	return nil
}

// place is where an advisory is stored: its bucket and data source.
func (a *Advisory) place() (string, types.DataSource, error) {
	switch a.Ecosystem {
	case "debian":
		return bucket.NewDebian(a.Release).Name(), types.DataSource{
			ID: vulnerability.Debian, Name: "Debian Security Tracker", URL: "https://salsa.debian.org/security-tracker-team/security-tracker",
		}, nil
	case "alpine":
		return bucket.NewAlpine(a.Release).Name(), types.DataSource{
			ID: vulnerability.Alpine, Name: "Alpine Secdb", URL: "https://secdb.alpinelinux.org/",
		}, nil
	}
	ghsa := map[string]string{"go": "Go", "npm": "npm"}[a.Ecosystem]
	src := types.DataSource{
		ID:   vulnerability.GHSA,
		Name: "GitHub Security Advisory " + ghsa,
		URL:  "https://github.com/advisories?query=type%3Areviewed+ecosystem%3A" + strings.ToLower(ghsa),
	}
	var b bucket.DataSourceBucket
	var err error
	if a.Ecosystem == "go" {
		b, err = bucket.NewGo(src)
	} else {
		b, err = bucket.NewNpm(src)
	}
	if err != nil {
		return "", types.DataSource{}, err
	}
	return b.Name(), src, nil
}

// build writes trivy.db and metadata.json into dir.
func build(dir string, in *Input) (err error) {
	if err := db.Init(dir); err != nil {
		return fmt.Errorf("opening the database: %w", err)
	}
	defer func() {
		if cerr := db.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing the database: %w", cerr)
		}
	}()
	dbc := db.Config{}
	err = dbc.BatchUpdate(func(tx *bolt.Tx) error {
		for i := range in.Advisories {
			if err := put(dbc, tx, &in.Advisories[i]); err != nil {
				return fmt.Errorf("advisories[%d] (%s %s): %w", i, in.Advisories[i].ID, in.Advisories[i].Package, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := finish(dbc); err != nil {
		return err
	}
	return metadata.NewClient(dir).Update(metadata.Metadata{
		Version: db.SchemaVersion, UpdatedAt: in.UpdatedAt.UTC(), NextUpdate: in.NextUpdate.UTC(),
	})
}

// put stores one advisory as trivy-db's vulnsrc packages do: the advisory
// detail under its bucket, the vulnerability detail under its source, the
// id, and the bucket's data source.
func put(dbc db.Config, tx *bolt.Tx, a *Advisory) error {
	bkt, src, err := a.place()
	if err != nil {
		return err
	}
	sev, _ := types.NewSeverity(strings.ToUpper(a.Severity))
	adv := types.Advisory{FixedVersion: a.Fixed}
	switch a.Ecosystem {
	case "go", "npm":
		adv = types.Advisory{VulnerableVersions: a.Vulnerable, PatchedVersions: a.Patched}
	case "debian":
		if a.Fixed == "" {
			adv.Status = types.StatusAffected
		}
	}
	if err := dbc.PutAdvisoryDetail(tx, a.ID, a.Package, []string{bkt}, adv); err != nil {
		return err
	}
	detail := types.VulnerabilityDetail{Severity: sev, Title: a.Title}
	if err := dbc.PutVulnerabilityDetail(tx, a.ID, src.ID, detail); err != nil {
		return err
	}
	if err := dbc.PutVulnerabilityID(tx, a.ID); err != nil {
		return err
	}
	return dbc.PutDataSource(tx, bkt, src)
}

// finish does what trivy-db's build does after inserting advisories:
// copies each advisory detail into its bucket, stores the merged
// vulnerability record, and drops the working buckets.
func finish(dbc db.Config) error {
	vc := vulnerability.New(dbc)
	err := dbc.ForEachVulnerabilityID(func(tx *bolt.Tx, id string) error {
		if err := dbc.SaveAdvisoryDetails(tx, id); err != nil {
			return fmt.Errorf("saving the advisories of %s: %w", id, err)
		}
		details := vc.GetDetails(id)
		if len(details) == 0 {
			return nil
		}
		return dbc.PutVulnerability(tx, id, vc.Normalize(id, details))
	})
	if err != nil {
		return err
	}
	if err := dbc.DeleteVulnerabilityIDBucket(); err != nil {
		return err
	}
	if err := dbc.DeleteVulnerabilityDetailBucket(); err != nil {
		return err
	}
	return dbc.DeleteAdvisoryDetailBucket()
}

// pack writes trivy.db and metadata.json of dir as a gzipped tar at out.
func pack(dir, out string) (err error) {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for _, name := range []string{"trivy.db", "metadata.json"} {
		if err := addFile(tw, filepath.Join(dir, name), name); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func addFile(tw *tar.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: st.Size(), ModTime: st.ModTime(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
