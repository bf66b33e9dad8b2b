package loader

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/review"
)

// loadedProfile is a TollgateProfile in force and the version it came
// from.
type loadedProfile struct {
	uid        types.UID
	generation int64
	profile    policies.Profile
}

// clusterProfiles reads the TollgateProfiles: each that parses is a
// candidate, each that does not keeps its last good version (if any) and
// its error. The candidates are checked against the policies once the set
// is built (checkProfiles).
func (l *Loader) clusterProfiles(ctx context.Context) (map[string]policies.Profile, map[string]loadedProfile, []v1alpha1.TollgateProfile, map[string]error) {
	var list v1alpha1.TollgateProfileList
	if err := l.opts.Client.List(ctx, &list); err != nil {
		if !apimeta.IsNoMatchError(err) {
			l.opts.Logger.ErrorContext(ctx, "listing TollgateProfiles failed; the last good ones stay in force", "error", err)
		}
		out := map[string]policies.Profile{}
		for name, lp := range l.goodProfiles {
			out[name] = lp.profile
		}
		return out, maps.Clone(l.goodProfiles), nil, map[string]error{}
	}
	out := map[string]policies.Profile{}
	candidates := map[string]loadedProfile{}
	status := map[string]error{}
	for i := range list.Items {
		obj := &list.Items[i]
		if lp, ok := l.goodProfiles[obj.Name]; ok && lp.uid == obj.UID && lp.generation == obj.Generation {
			out[obj.Name], candidates[obj.Name], status[obj.Name] = lp.profile, lp, nil
			continue
		}
		p, err := policies.ParseProfile("TollgateProfile "+obj.Name+": spec", obj.Name, obj.Spec.Raw)
		if err != nil {
			status[obj.Name] = err
			if lp, ok := l.goodProfiles[obj.Name]; ok {
				out[obj.Name], candidates[obj.Name] = lp.profile, lp
			}
			continue
		}
		lp := loadedProfile{uid: obj.UID, generation: obj.Generation, profile: *p}
		out[obj.Name], candidates[obj.Name], status[obj.Name] = lp.profile, lp, nil
	}
	return out, candidates, list.Items, status
}

// checkProfiles finds the profiles that name policies the set does not
// hold. A TollgateProfile's new version that does so is refused (its last
// good version, if any, stays in force); a config whose definitions do so
// is reported. It says whether anything was refused, so the set is built
// again without it.
func (l *Loader) checkProfiles(st *review.Set, fromCluster map[string]policies.Profile, candidates map[string]loadedProfile, status map[string]error) (refused bool, cfgErr error) {
	var cfgProblems []string
	problems := st.ProfileProblems()
	for _, name := range slices.Sorted(maps.Keys(problems)) {
		probs := problems[name]
		if _, ok := fromCluster[name]; !ok {
			cfgProblems = append(cfgProblems, probs...)
			continue
		}
		status[name] = errors.New(strings.Join(probs, "; "))
		old, hasOld := l.goodProfiles[name]
		cand := candidates[name]
		switch {
		case hasOld && old.uid == cand.uid && old.generation == cand.generation:
			// In force already; a policy it names went away since. It
			// stays (what it names is harmless), and its status says so.
		case hasOld:
			fromCluster[name], candidates[name] = old.profile, old
			refused = true
		default:
			delete(fromCluster, name)
			delete(candidates, name)
			refused = true
		}
	}
	if len(cfgProblems) > 0 {
		cfgErr = fmt.Errorf("profiles: %s", strings.Join(cfgProblems, "; "))
	}
	return refused, cfgErr
}

// writeProfileStatuses records on each TollgateProfile whether it is in
// force.
func (l *Loader) writeProfileStatuses(ctx context.Context, items []v1alpha1.TollgateProfile, status map[string]error) {
	for i := range items {
		obj := &items[i]
		err, ok := status[obj.Name]
		if !ok {
			continue
		}
		lp, hasGood := l.goodProfiles[obj.Name]
		l.setObjectStatus(ctx, obj, &obj.Status, loadedCondition(obj.Generation, err, lp.generation, hasGood))
	}
}
