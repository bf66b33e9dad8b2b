package serve

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// leadership runs the work only one replica may do (the audit, the
// budget scanner, webhook configuration and status writes) while this
// replica holds the lease in the server's namespace, and campaigns again
// when it loses it. controller-runtime's own election exits the process on
// a lost lease, which an API server away for longer than the renew
// deadline (a restart, an etcd failover) causes on every leader at once:
// the admission webhook, which needs no lease, would go down with it.
// Here the leader's work stops, admission goes on, and the replica stands
// for election again.
type leadership struct {
	enabled             bool
	lock                resourcelock.Interface
	name                string
	lease, renew, retry time.Duration
	logger              *slog.Logger
	work                []func(ctx context.Context) error
	leading             atomic.Bool
}

var _ manager.LeaderElectionRunnable = (*leadership)(nil)

// newLeadership prepares the election of opts; with leader election off,
// this replica always leads.
func newLeadership(opts Options, logger *slog.Logger) (*leadership, error) {
	l := &leadership{enabled: opts.LeaderElection, name: opts.Name + "-leader", logger: logger.With("component", "leader-election"),
		lease: orDefault(opts.LeaseDuration, 15*time.Second), renew: orDefault(opts.RenewDeadline, 10*time.Second), retry: orDefault(opts.RetryPeriod, 2*time.Second)}
	if !l.enabled {
		return l, nil
	}
	// A lock call that hangs must not outlast the renew deadline.
	cfg := rest.CopyConfig(opts.REST)
	cfg.Timeout = l.renew / 2
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	host, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	l.lock, err = resourcelock.New(resourcelock.LeasesResourceLock, opts.Namespace, l.name, cs.CoreV1(), cs.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: host + "_" + string(uuid.NewUUID())})
	if err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	return l, nil
}

// add registers work to run while this replica leads; it must return
// soon after its context ends.
func (l *leadership) add(f func(ctx context.Context) error) { l.work = append(l.work, f) }

// isLeader reports whether this replica leads now.
func (l *leadership) isLeader() bool { return !l.enabled || l.leading.Load() }

// NeedLeaderElection implements manager.LeaderElectionRunnable: the
// manager starts it on every replica, once the caches have synced.
func (*leadership) NeedLeaderElection() bool { return false }

// Start campaigns until ctx ends, running the work while it leads. On a
// stop it gives the lease up, so that a standby takes over at once rather
// than after the lease duration.
func (l *leadership) Start(ctx context.Context) error {
	if !l.enabled {
		l.run(ctx)
		return nil
	}
	for ctx.Err() == nil {
		var done sync.WaitGroup
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: l.lock, Name: l.name, ReleaseOnCancel: true,
			LeaseDuration: l.lease, RenewDeadline: l.renew, RetryPeriod: l.retry,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) {
					done.Add(1)
					defer done.Done()
					l.logger.InfoContext(lctx, "leading: the audit, the budget scanner and status writes run here")
					l.run(lctx)
				},
				OnStoppedLeading: func() { l.leading.Store(false) },
			},
		})
		if err != nil {
			return fmt.Errorf("leader election: %w", err)
		}
		le.Run(ctx)
		// The leader's work ends before this replica stands again, so it
		// never overlaps with a new term of its own.
		done.Wait()
		if ctx.Err() == nil {
			l.logger.WarnContext(ctx, "lost the lease: the leader's work stopped, admission goes on; standing for election again")
		}
	}
	return nil
}

// run runs every piece of work until ctx ends, and waits for all of them.
func (l *leadership) run(ctx context.Context) {
	l.leading.Store(true)
	defer l.leading.Store(false)
	var wg sync.WaitGroup
	for _, f := range l.work {
		wg.Go(func() {
			if err := f(ctx); err != nil && ctx.Err() == nil {
				l.logger.ErrorContext(ctx, "leader work failed", "error", err)
			}
		})
	}
	wg.Wait()
}
