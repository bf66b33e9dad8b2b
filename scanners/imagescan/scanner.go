package imagescan

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/review"
	"github.com/tollgate-dev/tollgate/policies/vuln"
)

// Updater refreshes the vulnerability database a vuln.Scanner uses
// (scanners/trivy's Runner, unless it asks a Trivy server, which keeps its
// own).
type Updater interface {
	UpdateDB(ctx context.Context) (vuln.DBInfo, error)
}

// resolveTimeout bounds one tag resolution.
const resolveTimeout = 10 * time.Second

// SBOMKey is the ConfigMap key holding an image's gzipped CycloneDX SBOM.
const SBOMKey = "sbom.cdx.json.gz"

// Labels of the SBOM ConfigMaps.
const (
	labelManagedBy = "app.kubernetes.io/managed-by"
	labelSBOM      = "tollgate.dev/sbom"
)

// Options configure a Scanner.
type Options struct {
	// Client reads ImageScans (the manager's cache) and writes them, their
	// status and the SBOM ConfigMaps.
	Client client.Client
	// Live lists the cluster's pods (in pages) and the SBOM ConfigMaps of
	// Namespace straight from the API server: the scanner keeps no cache
	// of either.
	Live client.Reader
	// Scanner scans one image; Updater, when set, refreshes its database
	// every DBUpdateInterval (nil in client/server mode).
	Scanner vuln.Scanner
	Updater Updater
	// Keychains gives the registry credentials of a pod spec (the
	// webhook's pull secrets reader).
	Keychains review.KeychainSource
	// Namespace is where SBOM ConfigMaps are kept (Tollgate's own).
	Namespace string
	// Interval is how often a digest is rescanned (default 24h); a new
	// database rescans sooner.
	Interval time.Duration
	// Poll is how often pods are listed (default 1m); new ImageScans
	// (Trigger) are looked at sooner.
	Poll time.Duration
	// Concurrency is the scans run at once (default 2); Queue the digests
	// that may wait for one (default 256; more wait for the next pass).
	Concurrency, Queue int
	// DBUpdateInterval is how often Updater runs (default 6h).
	DBUpdateInterval time.Duration
	// MaxAge is the oldest database whose results count as current
	// (default 72h).
	MaxAge time.Duration
	// Retention is how long an ImageScan no pod runs is kept (default
	// 7 days).
	Retention time.Duration
	// RetryFailed is how soon a failed scan is tried again (default 5m).
	RetryFailed time.Duration
	// SBOMMaxBytes caps a gzipped SBOM kept in a ConfigMap (default
	// 512 KiB; the API server refuses objects over about 1.5 MiB).
	SBOMMaxBytes int
	// Insecure allows plain-HTTP registries when resolving tags;
	// Transport, when set, carries registry requests.
	Insecure  bool
	Transport http.RoundTripper
	Metrics   *Metrics
	Logger    *slog.Logger
	Now       func() time.Time
}

// Scanner scans the images the cluster runs (on the elected leader).
type Scanner struct {
	opts    Options
	trigger chan struct{}
	jobs    chan *job

	mu       sync.Mutex
	results  map[string]*v1alpha1.ImageScanStatus // by digest: the latest result, failed or not
	inflight map[string]bool                      // digests queued or scanning
	failedAt map[string]time.Time                 // digests whose last scan failed
	updErr   error                                // the last database update's error
	db       dbState                              // the database as the last pass saw it
}

// job is one digest's scan.
type job struct {
	digest string
	ref    string // repository@digest
	spec   v1alpha1.ImageScanSpec
}

// New checks the options.
func New(opts Options) (*Scanner, error) {
	if opts.Client == nil || opts.Live == nil || opts.Scanner == nil || opts.Namespace == "" {
		return nil, errors.New("imagescan: the scanner needs a Client, a Live reader, a Scanner and a Namespace")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.Interval, 24*time.Hour)
	def(&opts.Poll, time.Minute)
	def(&opts.DBUpdateInterval, 6*time.Hour)
	def(&opts.MaxAge, 72*time.Hour)
	def(&opts.Retention, 7*24*time.Hour)
	def(&opts.RetryFailed, 5*time.Minute)
	if opts.Concurrency <= 0 {
		opts.Concurrency = 2
	}
	if opts.Queue <= 0 {
		opts.Queue = 256
	}
	if opts.SBOMMaxBytes <= 0 {
		opts.SBOMMaxBytes = 512 << 10
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	return &Scanner{
		opts: opts, trigger: make(chan struct{}, 1), jobs: make(chan *job, opts.Queue),
		results: map[string]*v1alpha1.ImageScanStatus{}, inflight: map[string]bool{}, failedAt: map[string]time.Time{},
	}, nil
}

// Trigger asks for a pass soon (an ImageScan was created).
func (s *Scanner) Trigger() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

// Run scans until ctx ends: a pass every Poll (or on Trigger), Concurrency
// workers, and database updates every DBUpdateInterval.
func (s *Scanner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range s.opts.Concurrency {
		wg.Go(func() { s.work(ctx) })
	}
	// The database first: a new leader's first pass judges with it, rather
	// than finding none and marking every result stale for a moment.
	s.UpdateDB(ctx)
	if s.opts.Updater != nil {
		wg.Go(func() { s.updateLoop(ctx) })
	}
	tick := time.NewTicker(s.opts.Poll)
	defer tick.Stop()
	for {
		if err := s.Pass(ctx); err != nil && ctx.Err() == nil {
			s.opts.Logger.WarnContext(ctx, "image scan pass failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-s.trigger:
		}
	}
}

func (s *Scanner) updateLoop(ctx context.Context) {
	tick := time.NewTicker(s.opts.DBUpdateInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// UpdateDB refreshes the database once, records the outcome and, on
// success, asks for a pass (a new database rescans every digest).
func (s *Scanner) UpdateDB(ctx context.Context) {
	if s.opts.Updater == nil {
		return
	}
	_, err := s.opts.Updater.UpdateDB(ctx)
	if ctx.Err() != nil {
		return
	}
	s.mu.Lock()
	s.updErr = err
	s.mu.Unlock()
	if err != nil {
		s.opts.Metrics.updates.WithLabelValues("failed").Inc()
		s.opts.Logger.WarnContext(ctx, "vulnerability database update failed; scanning with the database held", "error", err)
		return
	}
	s.opts.Metrics.updates.WithLabelValues("updated").Inc()
	s.Trigger()
}

// use is what the pod listing says of one image reference.
type use struct {
	spec   v1alpha1.ImageScanSpec
	digest string // the running digest a container reported
}

// dbState is the database as one pass sees it.
type dbState struct {
	info  vuln.DBInfo
	stale bool
	why   string
}

// Pass lists pods and ImageScans once: it creates the ImageScans of new
// images, resolves digests, queues the digests due for a scan, copies
// results to references of digests already scanned, marks results stale
// when the database is, and deletes ImageScans unused for Retention.
func (s *Scanner) Pass(ctx context.Context) error {
	now := s.opts.Now()
	db := s.database(ctx, now)
	used, err := s.listPods(ctx)
	if err != nil {
		return err
	}
	var list v1alpha1.ImageScanList
	if err := s.opts.Client.List(ctx, &list); err != nil {
		return fmt.Errorf("listing ImageScans: %w", err)
	}
	s.opts.Metrics.images.Set(float64(len(list.Items)))
	existing := make(map[string]*v1alpha1.ImageScan, len(list.Items))
	for i := range list.Items {
		obj := &list.Items[i]
		existing[obj.Name] = obj
		s.remember(obj)
	}
	var errs []error
	for objName, u := range used {
		if existing[objName] != nil {
			continue
		}
		obj := &v1alpha1.ImageScan{ObjectMeta: metav1.ObjectMeta{Name: objName}, Spec: u.spec}
		if err := s.opts.Client.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			errs = append(errs, fmt.Errorf("creating the ImageScan of %s: %w", u.spec.Image, err))
			continue
		}
		existing[objName] = obj
	}
	names := make([]string, 0, len(existing))
	for n := range existing {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		obj := existing[n]
		u, inUse := used[n]
		if !inUse && s.expired(obj, now) {
			if err := s.opts.Client.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("deleting ImageScan %s: %w", n, err))
			}
			delete(existing, n)
			continue
		}
		if !namedFor(obj) {
			if err := s.misnamed(ctx, obj); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if err := s.reconcile(ctx, obj, u, inUse, db, now); err != nil {
			errs = append(errs, err)
		}
	}
	s.forget(existing)
	s.collectSBOMs(ctx, existing)
	return errors.Join(errs...)
}

// database reads the database's description and judges it.
func (s *Scanner) database(ctx context.Context, now time.Time) dbState {
	info, err := s.opts.Scanner.Database(ctx)
	s.mu.Lock()
	updErr := s.updErr
	s.mu.Unlock()
	var st dbState
	switch {
	case err != nil:
		st = dbState{stale: true, why: "the vulnerability database cannot be read: " + err.Error()}
	case info.UpdatedAt.IsZero():
		st = dbState{info: info, stale: true, why: "the vulnerability database has no build time"}
	case info.Age(now) > s.opts.MaxAge:
		st = dbState{info: info, stale: true, why: fmt.Sprintf("the vulnerability database was built %s ago, over the maximum age of %s",
			info.Age(now).Round(time.Second), s.opts.MaxAge)}
	default:
		st = dbState{info: info}
	}
	if st.stale && updErr != nil {
		st.why += "; the last update failed: " + updErr.Error()
	}
	s.mu.Lock()
	s.db = st
	s.mu.Unlock()
	s.opts.Metrics.dbAge.Set(info.Age(now).Seconds())
	if st.stale {
		s.opts.Metrics.dbStale.Set(1)
	} else {
		s.opts.Metrics.dbStale.Set(0)
	}
	return st
}

// listPods collects every image of every pod, with the running digest
// where a kubelet reported one, by ImageScan name.
func (s *Scanner) listPods(ctx context.Context) (map[string]*use, error) {
	used := map[string]*use{}
	cont := ""
	for {
		var pods corev1.PodList
		if err := s.opts.Live.List(ctx, &pods, client.Limit(500), client.Continue(cont)); err != nil {
			return nil, fmt.Errorf("listing pods: %w", err)
		}
		for i := range pods.Items {
			addPod(used, &pods.Items[i])
		}
		if cont = pods.Continue; cont == "" {
			return used, nil
		}
	}
}

func addPod(used map[string]*use, pod *corev1.Pod) {
	running := map[string]string{}
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for _, cs := range list {
			if d := runningDigest(cs.ImageID); d != "" {
				running[cs.Name] = d
			}
		}
	}
	add := func(container, image string) {
		norm, err := Normalize(image)
		if err != nil {
			return // the API server admitted it; the kubelet will not run it
		}
		n := ObjectName(norm)
		u := used[n]
		if u == nil {
			spec := v1alpha1.ImageScanSpec{Image: image, Namespace: pod.Namespace, ServiceAccountName: pod.Spec.ServiceAccountName}
			for _, r := range pod.Spec.ImagePullSecrets {
				if r.Name != "" && len(spec.ImagePullSecrets) < 32 {
					spec.ImagePullSecrets = append(spec.ImagePullSecrets, r.Name)
				}
			}
			u = &use{spec: spec}
			used[n] = u
		}
		if d := running[container]; d != "" && u.digest == "" {
			u.digest = d
		}
	}
	for _, c := range pod.Spec.InitContainers {
		add(c.Name, c.Image)
	}
	for _, c := range pod.Spec.Containers {
		add(c.Name, c.Image)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		add(c.Name, c.Image)
	}
}

// runningDigest is the repository digest in a container status's imageID
// (docker-pullable://repo@sha256:..., repo@sha256:...); "" for an image id
// alone (sha256:...), which names no repository digest.
func runningDigest(imageID string) string {
	_, d, ok := strings.Cut(imageID, "@")
	if !ok || !strings.HasPrefix(d, "sha256:") || len(d) != len("sha256:")+64 {
		return ""
	}
	return d
}

// remember seeds the digest index from a stored result, so a new leader
// rescans nothing it already has, and the retry clock from a stored
// failure.
func (s *Scanner) remember(obj *v1alpha1.ImageScan) {
	st := &obj.Status
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.Phase == v1alpha1.ImageScanFailed {
		// A failure a previous leader saw waits for its retry from now:
		// a leader change does not retry every failure at once.
		key := cmp.Or(st.Digest, obj.Name)
		if _, ok := s.failedAt[key]; !ok {
			s.failedAt[key] = s.opts.Now()
		}
		return
	}
	if st.Phase != v1alpha1.ImageScanScanned || st.Digest == "" || st.ScannedAt == nil {
		return
	}
	if r := s.results[st.Digest]; r == nil || r.ScannedAt.Before(st.ScannedAt) {
		s.results[st.Digest] = storedResult(st)
	}
}

// storedResult is the part of a status that belongs to its digest.
func storedResult(st *v1alpha1.ImageScanStatus) *v1alpha1.ImageScanStatus {
	r := st.DeepCopy()
	r.LastSeen = nil
	r.Conditions = slicesDeleteStale(r.Conditions)
	return r
}

func slicesDeleteStale(cs []metav1.Condition) []metav1.Condition {
	out := cs[:0:0]
	for _, c := range cs {
		if c.Type != v1alpha1.ConditionStale {
			out = append(out, c)
		}
	}
	return out
}

func (s *Scanner) expired(obj *v1alpha1.ImageScan, now time.Time) bool {
	seen := obj.CreationTimestamp.Time
	if obj.Status.LastSeen != nil && obj.Status.LastSeen.After(seen) {
		seen = obj.Status.LastSeen.Time
	}
	return !seen.IsZero() && now.Sub(seen) > s.opts.Retention
}

// reconcile brings one ImageScan up to date: its digest, the result of
// that digest (scanning it when due), staleness and when it was seen.
func (s *Scanner) reconcile(ctx context.Context, obj *v1alpha1.ImageScan, u *use, inUse bool, db dbState, now time.Time) error {
	want := obj.Status.DeepCopy()
	if inUse && (want.LastSeen == nil || now.Sub(want.LastSeen.Time) > s.seenEvery()) {
		want.LastSeen = timePtr(now)
	}
	digest, err := s.digestOf(ctx, obj, u, now)
	switch {
	case err != nil:
		if want.Phase != v1alpha1.ImageScanScanned {
			want.Phase = v1alpha1.ImageScanFailed
		}
		want.Error = err.Error()
	case digest != "":
		if want.Digest != digest {
			// A new digest (the tag moved, or a first resolution): the
			// old digest's result says nothing of it.
			*want = v1alpha1.ImageScanStatus{Phase: v1alpha1.ImageScanPending, Digest: digest, LastSeen: want.LastSeen}
		}
		s.mu.Lock()
		r := s.results[digest]
		s.mu.Unlock()
		if r != nil && !equalStatus(storedResult(want), r) {
			// A result of this digest exists (another reference, an
			// earlier scan, or a write that did not land): copied, not
			// rescanned.
			seen := want.LastSeen
			*want = *r.DeepCopy()
			want.LastSeen = seen
		}
		if s.due(digest, r, db, now) {
			s.enqueue(&job{digest: digest, ref: repoAt(obj.Spec.Image, digest), spec: obj.Spec})
		}
	}
	if want.Phase == "" {
		want.Phase = v1alpha1.ImageScanPending
	}
	setStale(want, db, now, s.opts.MaxAge)
	if equalStatus(&obj.Status, want) {
		return nil
	}
	err = s.writeStatus(ctx, obj.Name, func(st *v1alpha1.ImageScanStatus) { *st = *want })
	obj.Status.Digest = want.Digest // the pass's view, before the cache's
	return err
}

// misnamed fails an ImageScan made by hand whose name is not its image's
// (or whose image is no reference): it is never scanned, and the store
// never reads it as any image's result.
func (s *Scanner) misnamed(ctx context.Context, obj *v1alpha1.ImageScan) error {
	msg := "not scanned: an ImageScan's name is img- and 40 hex digits of the SHA-256 of its normalized image reference; delete this one, the scanner creates the right one"
	if _, err := Normalize(obj.Spec.Image); err != nil {
		msg = "not scanned: spec.image: " + err.Error()
	}
	if obj.Status.Phase == v1alpha1.ImageScanFailed && obj.Status.Error == msg {
		return nil
	}
	return s.writeStatus(ctx, obj.Name, func(st *v1alpha1.ImageScanStatus) {
		*st = v1alpha1.ImageScanStatus{Phase: v1alpha1.ImageScanFailed, Error: msg}
	})
}

// seenEvery is how often LastSeen is refreshed: often enough for
// Retention, rarely enough not to write every ImageScan every pass.
func (s *Scanner) seenEvery() time.Duration {
	return max(s.opts.Retention/10, time.Minute)
}

// digestOf is the digest to scan for an ImageScan: the running one, the
// reference's own, the one resolved before (until a rescan is due), or
// the tag resolved now with the pod's credentials.
func (s *Scanner) digestOf(ctx context.Context, obj *v1alpha1.ImageScan, u *use, now time.Time) (string, error) {
	if u != nil && u.digest != "" {
		return u.digest, nil
	}
	ref, err := s.parse(obj.Spec.Image)
	if err != nil {
		return "", err
	}
	if d, ok := ref.(name.Digest); ok {
		return d.DigestStr(), nil
	}
	st := &obj.Status
	if st.Digest != "" && st.ScannedAt != nil && now.Sub(st.ScannedAt.Time) < s.opts.Interval {
		return st.Digest, nil
	}
	if st.Digest != "" && (s.queued(st.Digest) || st.Phase == v1alpha1.ImageScanFailed && !s.retryDue(st.Digest, now)) {
		return st.Digest, nil // waiting for its scan, or its retry: not resolved again each pass
	}
	if st.Phase == v1alpha1.ImageScanFailed && st.Digest == "" && !s.retryDue(obj.Name, now) {
		return "", errors.New(st.Error)
	}
	// A registry that does not answer holds up this pass, not the next.
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	kc, kerr := s.keychain(ctx, &obj.Spec)
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}
	if s.opts.Transport != nil {
		opts = append(opts, remote.WithTransport(s.opts.Transport))
	}
	desc, err := remote.Head(ref, opts...)
	if err != nil {
		s.mu.Lock()
		s.failedAt[obj.Name] = now
		s.mu.Unlock()
		if kerr != nil {
			err = fmt.Errorf("%w (registry credentials: %w)", err, kerr)
		}
		return "", fmt.Errorf("resolving %s: %w", obj.Spec.Image, err)
	}
	return desc.Digest.String(), nil
}

func (s *Scanner) queued(digest string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflight[digest]
}

func (s *Scanner) retryDue(key string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.failedAt[key]
	return !ok || now.Sub(at) >= s.opts.RetryFailed
}

func (s *Scanner) parse(image string) (name.Reference, error) {
	var o []name.Option
	if s.opts.Insecure {
		o = append(o, name.Insecure)
	}
	ref, err := name.ParseReference(image, o...)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", image, err)
	}
	return ref, nil
}

func (s *Scanner) keychain(ctx context.Context, spec *v1alpha1.ImageScanSpec) (authn.Keychain, error) {
	if s.opts.Keychains == nil || spec.Namespace == "" {
		return authn.NewMultiKeychain(), nil
	}
	kc, err := s.opts.Keychains.Keychain(ctx, spec.Namespace, podSpecOf(spec))
	if kc == nil {
		kc = authn.NewMultiKeychain()
	}
	return kc, err
}

// repoAt is image's repository at digest (what the scanner pulls).
func repoAt(image, digest string) string {
	if ref, err := name.ParseReference(image); err == nil {
		return ref.Context().Name() + "@" + digest
	}
	return image
}

// due reports whether a digest needs a scan: none yet, an old one, one
// from a database other than today's, or a failure whose retry is due.
func (s *Scanner) due(digest string, r *v1alpha1.ImageScanStatus, db dbState, now time.Time) bool {
	s.mu.Lock()
	failed, hasFailed := s.failedAt[digest]
	s.mu.Unlock()
	if hasFailed && now.Sub(failed) < s.opts.RetryFailed {
		return false
	}
	switch {
	case r == nil || r.ScannedAt == nil:
		return true
	case now.Sub(r.ScannedAt.Time) >= s.opts.Interval:
		return true
	case !db.info.UpdatedAt.IsZero() && (r.DBUpdatedAt == nil || !r.DBUpdatedAt.Time.Equal(db.info.UpdatedAt.Truncate(time.Second))):
		return true
	}
	return false
}

// enqueue queues a digest's scan once; a full queue leaves it for the
// next pass.
func (s *Scanner) enqueue(j *job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight[j.digest] {
		return
	}
	select {
	case s.jobs <- j:
		s.inflight[j.digest] = true
		s.opts.Metrics.queued.WithLabelValues("scanner").Inc()
		s.opts.Metrics.queue.Set(float64(len(s.inflight)))
	default:
		s.opts.Metrics.dropped.WithLabelValues("scanner").Inc()
	}
}

func (s *Scanner) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-s.jobs:
			s.scan(ctx, j)
			s.mu.Lock()
			delete(s.inflight, j.digest)
			s.opts.Metrics.queue.Set(float64(len(s.inflight)))
			s.mu.Unlock()
		}
	}
}

// scan scans one digest and writes the result to every ImageScan of it.
func (s *Scanner) scan(ctx context.Context, j *job) {
	start := s.opts.Now()
	kc, kerr := s.keychain(ctx, &j.spec)
	rep, err := s.opts.Scanner.Scan(ctx, j.ref, kc)
	if ctx.Err() != nil {
		return
	}
	s.opts.Metrics.duration.Observe(time.Since(start).Seconds())
	s.mu.Lock()
	prev := s.results[j.digest]
	s.mu.Unlock()
	var result v1alpha1.ImageScanStatus
	var sbomErr error
	if rep != nil && err != nil {
		// The report is whole; only its SBOM failed.
		sbomErr, err = err, nil
	}
	if err != nil {
		s.opts.Metrics.scans.WithLabelValues("failed").Inc()
		if kerr != nil {
			err = fmt.Errorf("%w (registry credentials: %w)", err, kerr)
		}
		s.opts.Logger.WarnContext(ctx, "image scan failed", "image", j.ref, "error", err)
		s.mu.Lock()
		s.failedAt[j.digest] = s.opts.Now()
		s.mu.Unlock()
		if prev != nil {
			// The last result stands; the error says the rescan failed.
			result = *prev.DeepCopy()
			result.Error = "rescan failed: " + err.Error()
		} else {
			result = v1alpha1.ImageScanStatus{Phase: v1alpha1.ImageScanFailed, Digest: j.digest, Error: err.Error()}
		}
	} else {
		s.opts.Metrics.scans.WithLabelValues("scanned").Inc()
		s.mu.Lock()
		delete(s.failedAt, j.digest)
		s.mu.Unlock()
		if rep.ScannedAt.IsZero() {
			rep.ScannedAt = s.opts.Now()
		}
		result = resultOf(rep, j.digest)
		if sbomErr != nil {
			apimeta.SetStatusCondition(&result.Conditions, metav1.Condition{Type: v1alpha1.ConditionSBOMStored, Status: metav1.ConditionFalse,
				Reason: "Failed", Message: truncate(sbomErr.Error(), 1024), LastTransitionTime: *timePtr(s.opts.Now())})
		} else {
			s.storeSBOM(ctx, j, rep.SBOM, &result)
		}
	}
	s.mu.Lock()
	// Kept failed or not: a write that misses an ImageScan (the cache not
	// yet showing its digest) is made good by the next pass's copy.
	s.results[j.digest] = &result
	s.mu.Unlock()
	s.writeDigest(ctx, j.digest, &result)
	s.Trigger() // new references of the digest, and staleness, on the next pass
}

// writeDigest writes a digest's result to each ImageScan that has it.
func (s *Scanner) writeDigest(ctx context.Context, digest string, result *v1alpha1.ImageScanStatus) {
	var list v1alpha1.ImageScanList
	if err := s.opts.Client.List(ctx, &list); err != nil {
		s.opts.Logger.WarnContext(ctx, "listing ImageScans failed; the result is written on the next pass", "error", err)
		return
	}
	for i := range list.Items {
		obj := &list.Items[i]
		if obj.Status.Digest != digest {
			continue
		}
		s.mu.Lock()
		db := s.db
		s.mu.Unlock()
		err := s.writeStatus(ctx, obj.Name, func(st *v1alpha1.ImageScanStatus) {
			seen, conds := st.LastSeen, st.Conditions
			*st = *result.DeepCopy()
			st.LastSeen = seen
			for _, c := range conds {
				if c.Type == v1alpha1.ConditionStale {
					apimeta.SetStatusCondition(&st.Conditions, c)
				}
			}
			setStale(st, db, s.opts.Now(), s.opts.MaxAge)
		})
		if err != nil {
			s.opts.Logger.WarnContext(ctx, "writing an image scan result failed; it is written on the next pass", "imagescan", obj.Name, "error", err)
		}
	}
}

// writeStatus reads an ImageScan and updates its status with set,
// retrying on conflicts.
func (s *Scanner) writeStatus(ctx context.Context, objName string, set func(*v1alpha1.ImageScanStatus)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		// Read live: the cache may not show the last write yet, and its
		// resourceVersion would conflict again.
		var obj v1alpha1.ImageScan
		if err := s.opts.Live.Get(ctx, client.ObjectKey{Name: objName}, &obj); err != nil {
			return client.IgnoreNotFound(err)
		}
		set(&obj.Status)
		if err := s.opts.Client.Status().Update(ctx, &obj); err != nil {
			return fmt.Errorf("writing the status of ImageScan %s: %w", objName, err)
		}
		return nil
	})
}

// setStale sets or clears the Stale condition: the database is stale, or
// the result came from one older than maxAge.
func setStale(st *v1alpha1.ImageScanStatus, db dbState, now time.Time, maxAge time.Duration) {
	if st.Phase != v1alpha1.ImageScanScanned {
		apimeta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionStale)
		return
	}
	c := metav1.Condition{Type: v1alpha1.ConditionStale, Status: metav1.ConditionFalse, Reason: "DatabaseCurrent",
		Message: "the result comes from a current vulnerability database"}
	switch {
	case db.stale:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, "DatabaseStale", truncate(db.why, 1024)
	case st.DBUpdatedAt == nil || now.Sub(st.DBUpdatedAt.Time) > maxAge:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, "ResultStale", "the result comes from a vulnerability database older than the maximum age; a rescan is queued"
	}
	if old := apimeta.FindStatusCondition(st.Conditions, c.Type); old != nil && old.Status == c.Status && old.Reason == c.Reason && old.Message == c.Message {
		return
	}
	c.LastTransitionTime = *timePtr(now)
	apimeta.SetStatusCondition(&st.Conditions, c)
}

// equalStatus compares statuses as stored (times at second precision).
func equalStatus(a, b *v1alpha1.ImageScanStatus) bool {
	return equality.Semantic.DeepEqual(a, b)
}

// storeSBOM keeps a scan's SBOM, gzipped, in a ConfigMap named after the
// digest, or says in a condition why it is not kept.
func (s *Scanner) storeSBOM(ctx context.Context, j *job, sbom []byte, st *v1alpha1.ImageScanStatus) {
	if len(sbom) == 0 {
		return
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(sbom)
	_ = zw.Close()
	cond := metav1.Condition{Type: v1alpha1.ConditionSBOMStored, Status: metav1.ConditionTrue, Reason: "Stored",
		LastTransitionTime: *timePtr(s.opts.Now())}
	if buf.Len() > s.opts.SBOMMaxBytes {
		cond.Status, cond.Reason = metav1.ConditionFalse, "TooLarge"
		cond.Message = fmt.Sprintf("the CycloneDX SBOM is %d bytes gzipped, over the %d kept in the cluster; produce it with `tollgate scan image --format cyclonedx %s`",
			buf.Len(), s.opts.SBOMMaxBytes, j.ref)
		apimeta.SetStatusCondition(&st.Conditions, cond)
		return
	}
	cmName := sbomName(j.digest)
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: cmName, Namespace: s.opts.Namespace,
			Labels:      map[string]string{labelManagedBy: "tollgate", labelSBOM: "cyclonedx"},
			Annotations: map[string]string{"tollgate.dev/image": j.ref}},
		BinaryData: map[string][]byte{SBOMKey: buf.Bytes()},
	}
	err := s.opts.Client.Create(ctx, cm)
	if apierrors.IsAlreadyExists(err) {
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var cur corev1.ConfigMap
			if err := s.opts.Live.Get(ctx, client.ObjectKeyFromObject(cm), &cur); err != nil {
				return err
			}
			cur.BinaryData, cur.Labels, cur.Annotations = cm.BinaryData, cm.Labels, cm.Annotations
			return s.opts.Client.Update(ctx, &cur)
		})
	}
	if err != nil {
		cond.Status, cond.Reason = metav1.ConditionFalse, "WriteFailed"
		cond.Message = truncate("writing ConfigMap "+s.opts.Namespace+"/"+cmName+": "+err.Error(), 1024)
		apimeta.SetStatusCondition(&st.Conditions, cond)
		return
	}
	cond.Message = fmt.Sprintf("ConfigMap %s/%s, key %s", s.opts.Namespace, cmName, SBOMKey)
	apimeta.SetStatusCondition(&st.Conditions, cond)
	st.SBOM = cmName
}

// sbomName is the SBOM ConfigMap's name for a digest.
func sbomName(digest string) string {
	return "sbom-" + strings.TrimPrefix(digest, "sha256:")
}

// forget drops the results of digests no ImageScan has any more.
func (s *Scanner) forget(existing map[string]*v1alpha1.ImageScan) {
	live := map[string]bool{}
	for _, obj := range existing {
		live[obj.Status.Digest] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	scanned := 0
	for d, r := range s.results {
		switch {
		case !live[d] && !s.inflight[d]:
			delete(s.results, d)
		case r.Phase == v1alpha1.ImageScanScanned:
			scanned++
		}
	}
	s.opts.Metrics.cache.Set(float64(scanned))
}

// collectSBOMs deletes SBOM ConfigMaps no ImageScan or result names any
// more.
func (s *Scanner) collectSBOMs(ctx context.Context, existing map[string]*v1alpha1.ImageScan) {
	keep := map[string]bool{}
	for _, obj := range existing {
		if obj.Status.SBOM != "" {
			keep[obj.Status.SBOM] = true
		}
	}
	s.mu.Lock()
	for _, r := range s.results {
		if r.SBOM != "" {
			keep[r.SBOM] = true
		}
	}
	s.mu.Unlock()
	var cms corev1.ConfigMapList
	if err := s.opts.Live.List(ctx, &cms, client.InNamespace(s.opts.Namespace), client.MatchingLabels{labelManagedBy: "tollgate", labelSBOM: "cyclonedx"}); err != nil {
		s.opts.Logger.WarnContext(ctx, "listing SBOM ConfigMaps failed", "error", err)
		return
	}
	for i := range cms.Items {
		if cm := &cms.Items[i]; !keep[cm.Name] {
			if err := s.opts.Client.Delete(ctx, cm); err != nil && !apierrors.IsNotFound(err) {
				s.opts.Logger.WarnContext(ctx, "deleting an SBOM ConfigMap failed", "configmap", cm.Name, "error", err)
			}
		}
	}
}
