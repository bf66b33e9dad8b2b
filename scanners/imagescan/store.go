package imagescan

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/vuln"
)

// StoreOptions configure a Store.
type StoreOptions struct {
	// Reader reads ImageScans; an informer-backed client (the manager's
	// cache), so a review never waits on the API server.
	Reader client.Reader
	// Writer creates the ImageScans of images without one.
	Writer client.Writer
	// MaxAge is the oldest vulnerability database whose results count as
	// current (default 72h); older ones are reported stale.
	MaxAge time.Duration
	// Queue bounds the images waiting for their ImageScan to be created
	// (default 1024); beyond it they are dropped and counted, and the
	// scanner's pod listing finds them instead.
	Queue int
	// Metrics receives the queue's series (nil: none).
	Metrics *Metrics
	Logger  *slog.Logger
	Now     func() time.Time
}

// Store gives the review core the scans of images (vuln.Source).
type Store struct {
	opts StoreOptions
	work chan *v1alpha1.ImageScan

	mu      sync.Mutex
	pending map[string]bool // names queued or being created
	memo    map[string]memo // by ImageScan name; never modified once stored
}

var _ vuln.Source = (*Store)(nil)

// NewStore checks the options.
func NewStore(opts StoreOptions) (*Store, error) {
	if opts.Reader == nil || opts.Writer == nil {
		return nil, errors.New("imagescan: the store needs a Reader and a Writer")
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 72 * time.Hour
	}
	if opts.Queue <= 0 {
		opts.Queue = 1024
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{opts: opts, work: make(chan *v1alpha1.ImageScan, opts.Queue), pending: map[string]bool{}, memo: map[string]memo{}}, nil
}

// Start creates the queued ImageScans until ctx ends, with two writers:
// a burst of new images waits in the bounded queue, never in goroutines.
func (s *Store) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case obj := <-s.work:
					s.create(ctx, obj)
				}
			}
		})
	}
	wg.Wait()
	return nil
}

func (s *Store) create(ctx context.Context, obj *v1alpha1.ImageScan) {
	defer func() {
		s.mu.Lock()
		delete(s.pending, obj.Name)
		s.mu.Unlock()
	}()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.opts.Writer.Create(cctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
		s.opts.Logger.WarnContext(ctx, "creating an ImageScan failed; the scanner's pod listing will find the image", "image", obj.Spec.Image, "error", err)
	}
}

// Summaries implements vuln.Source: the stored result of each image, or
// pending (and queued, unless ctx says vuln.WithoutQueueing) when there is
// none. It never waits for a scan or
// the API server; images that are not references at all are failed with
// the reason.
func (s *Store) Summaries(ctx context.Context, namespace string, podSpec map[string]any, images []string) map[string]*vuln.Summary {
	out := make(map[string]*vuln.Summary, len(images))
	for _, image := range images {
		if _, done := out[image]; done {
			continue
		}
		out[image] = s.summary(ctx, namespace, podSpec, image)
	}
	return out
}

func (s *Store) summary(ctx context.Context, namespace string, podSpec map[string]any, image string) *vuln.Summary {
	norm, err := Normalize(image)
	if err != nil {
		return &vuln.Summary{Status: vuln.StatusFailed, Error: err.Error()}
	}
	var obj v1alpha1.ImageScan
	key := client.ObjectKey{Name: ObjectName(norm)}
	// Read-only: the cache's own object, not a copy of its vulnerabilities.
	switch err := s.opts.Reader.Get(ctx, key, &obj, client.UnsafeDisableDeepCopy); {
	case apierrors.IsNotFound(err):
		if vuln.Queueing(ctx) { // not for a dry run: it has no side effects
			s.enqueue(ctx, key.Name, image, namespace, podSpec)
		}
		return &vuln.Summary{Status: vuln.StatusPending}
	case err != nil:
		return &vuln.Summary{Status: vuln.StatusPending, Error: "reading ImageScan " + key.Name + ": " + err.Error()}
	}
	if !namedFor(&obj) {
		// Only a hand-made object can name another image: never its result.
		return &vuln.Summary{Status: vuln.StatusFailed, Error: "ImageScan " + obj.Name + " is not the scan of " + image + " (its spec.image is " + obj.Spec.Image + ")"}
	}
	sum := *s.converted(&obj) // a copy: the memo's is shared
	if sum.Status == vuln.StatusScanned && s.stale(&obj) {
		sum.Status = vuln.StatusStale
	}
	return &sum
}

// maxMemo bounds the converted summaries kept; past it the memo starts
// over (deleted ImageScans leave entries behind).
const maxMemo = 50000

// converted is summaryOf, once per version of an ImageScan: a pod
// template's images are looked up on every review of it.
func (s *Store) converted(obj *v1alpha1.ImageScan) *vuln.Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.memo[obj.Name]; ok && m.version == obj.ResourceVersion && obj.ResourceVersion != "" {
		return m.sum
	}
	sum := summaryOf(obj)
	if len(s.memo) >= maxMemo {
		clear(s.memo)
	}
	s.memo[obj.Name] = memo{version: obj.ResourceVersion, sum: sum}
	return sum
}

// memo is an ImageScan's summary at one resourceVersion.
type memo struct {
	version string
	sum     *vuln.Summary
}

// namedFor reports whether an ImageScan's name is the one of its image,
// as every ImageScan the store and the scanner create is.
func namedFor(obj *v1alpha1.ImageScan) bool {
	norm, err := Normalize(obj.Spec.Image)
	return err == nil && ObjectName(norm) == obj.Name
}

// stale reports whether a result came from a database older than MaxAge,
// or the scanner marked it stale (the database cannot be read).
func (s *Store) stale(obj *v1alpha1.ImageScan) bool {
	if apimeta.IsStatusConditionTrue(obj.Status.Conditions, v1alpha1.ConditionStale) {
		return true
	}
	db := obj.Status.DBUpdatedAt
	return db == nil || s.opts.Now().Sub(db.Time) > s.opts.MaxAge
}

// enqueue queues the creation of an image's ImageScan, once, without
// blocking: a full queue drops the image (counted).
func (s *Store) enqueue(ctx context.Context, objName, image, namespace string, podSpec map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[objName] {
		return
	}
	obj := &v1alpha1.ImageScan{ObjectMeta: metav1.ObjectMeta{Name: objName}, Spec: specOf(image, namespace, podSpec)}
	select {
	case s.work <- obj:
		s.pending[objName] = true
		if m := s.opts.Metrics; m != nil {
			m.queued.WithLabelValues("admission").Inc()
		}
	default:
		if m := s.opts.Metrics; m != nil {
			m.dropped.WithLabelValues("admission").Inc()
		}
		s.opts.Logger.DebugContext(ctx, "image scan queue full; image dropped", "image", image)
	}
}

// specOf is an ImageScan's spec: the image, and the credential hints of
// the pod that runs it.
func specOf(image, namespace string, podSpec map[string]any) v1alpha1.ImageScanSpec {
	spec := v1alpha1.ImageScanSpec{Image: image, Namespace: namespace}
	if podSpec == nil {
		return spec
	}
	spec.ServiceAccountName, _ = podSpec["serviceAccountName"].(string)
	list, _ := podSpec["imagePullSecrets"].([]any)
	for _, r := range list {
		if m, _ := r.(map[string]any); m != nil {
			if n, _ := m["name"].(string); n != "" && len(spec.ImagePullSecrets) < 32 {
				spec.ImagePullSecrets = append(spec.ImagePullSecrets, n)
			}
		}
	}
	return spec
}

// podSpecOf is the inverse of specOf: the pod spec fields a
// review.KeychainSource reads.
func podSpecOf(spec *v1alpha1.ImageScanSpec) map[string]any {
	if spec.Namespace == "" {
		return nil
	}
	ps := map[string]any{}
	if spec.ServiceAccountName != "" {
		ps["serviceAccountName"] = spec.ServiceAccountName
	}
	if len(spec.ImagePullSecrets) > 0 {
		refs := make([]any, len(spec.ImagePullSecrets))
		for i, n := range spec.ImagePullSecrets {
			refs[i] = map[string]any{"name": n}
		}
		ps["imagePullSecrets"] = refs
	}
	return ps
}
