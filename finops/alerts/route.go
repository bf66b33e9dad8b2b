package alerts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ChannelAnnotation names, on a Namespace (or a Budget, which wins), the
// channel its budget alerts go to: a key of Routes.Channels. A namespace
// owner can only choose among the channels the platform configured; the
// webhook URLs stay in Secrets they cannot read.
const ChannelAnnotation = "tollgate.dev/budget-channel"

// ChannelType is the kind of receiver behind a channel, which decides the
// payload's format.
type ChannelType string

// The receivers alerts can be delivered to.
const (
	// Slack is a Slack incoming webhook; the alert is a Block Kit message.
	Slack ChannelType = "slack"
	// Teams is a Microsoft Teams workflow webhook ("Post to a channel
	// when a webhook request is received"); the alert is an Adaptive Card.
	Teams ChannelType = "teams"
	// CloudEvents is any HTTP receiver of CloudEvents 1.0 in structured
	// mode; the alert is the event's data.
	CloudEvents ChannelType = "cloudevents"
)

// SecretKeyRef locates the Secret key that holds a channel's webhook URL,
// which is a credential: anyone who has it can post to the channel.
type SecretKeyRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Key       string `json:"key"`
}

func (r SecretKeyRef) String() string {
	return fmt.Sprintf("Secret %s/%s key %q", r.Namespace, r.Name, r.Key)
}

// Channel is a destination for alerts: what kind of receiver, and where
// its webhook URL is kept.
type Channel struct {
	Type      ChannelType  `json:"type"`
	URLSecret SecretKeyRef `json:"urlSecret"`
}

// Routes map the channel names that namespaces choose with
// ChannelAnnotation to webhooks, and name the channel that takes every
// alert whose namespace chooses none, or one that is not configured. The
// scanner fills it from its configuration; in YAML:
//
//	default: platform-finops
//	channels:
//	  platform-finops:
//	    type: slack
//	    urlSecret: {namespace: tollgate-system, name: budget-webhooks, key: platform-finops}
//	  payments-teams:
//	    type: teams
//	    urlSecret: {namespace: tollgate-system, name: budget-webhooks, key: payments-teams}
//	  finops-events:
//	    type: cloudevents
//	    urlSecret: {namespace: tollgate-system, name: budget-webhooks, key: events}
type Routes struct {
	Default  string             `json:"default"`
	Channels map[string]Channel `json:"channels"`
}

// Validate reports every problem, each naming its field
// (channels["payments-teams"].urlSecret.key).
func (r Routes) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	switch _, ok := r.Channels[r.Default]; {
	case r.Default == "":
		bad("default: a default channel is required, for namespaces that name none")
	case !ok:
		bad("default: channel %q is not in channels", r.Default)
	}
	names := make([]string, 0, len(r.Channels))
	for name := range r.Channels {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		ch, at := r.Channels[name], fmt.Sprintf("channels[%q]", name)
		if strings.TrimSpace(name) == "" {
			bad("%s: a channel name must not be empty", at)
		}
		switch ch.Type {
		case Slack, Teams, CloudEvents:
		case "":
			bad("%s.type: required: slack, teams or cloudevents", at)
		default:
			bad("%s.type: %q: want slack, teams or cloudevents", at, ch.Type)
		}
		for _, f := range []struct{ field, value string }{
			{"namespace", ch.URLSecret.Namespace}, {"name", ch.URLSecret.Name}, {"key", ch.URLSecret.Key},
		} {
			if f.value == "" {
				bad("%s.urlSecret.%s: required", at, f.field)
			}
		}
	}
	return errors.Join(errs...)
}

// SecretReader reads one key of a Secret. The caller supplies it (with a
// client, an informer's cache, or a map in tests), so this package needs
// no Kubernetes client. Its errors should not hold the value.
type SecretReader func(ctx context.Context, namespace, name, key string) ([]byte, error)

// route is where one alert goes, and why.
type route struct {
	name string
	ch   Channel
	note string
}

// route picks the channel the first annotation set naming one asks for,
// or the default with a note saying why.
func (r Routes) route(annotations []map[string]string) route {
	requested := ""
	for _, set := range annotations {
		if v := strings.TrimSpace(set[ChannelAnnotation]); v != "" {
			requested = v
			break
		}
	}
	if ch, ok := r.Channels[requested]; ok && requested != "" {
		return route{name: requested, ch: ch}
	}
	rt := route{name: r.Default, ch: r.Channels[r.Default]}
	if requested == "" {
		rt.note = fmt.Sprintf("no %s annotation; sent to the default channel %q", ChannelAnnotation, r.Default)
	} else {
		rt.note = fmt.Sprintf("channel %q named by %s is not configured; sent to the default channel %q",
			clean(requested, maxName), ChannelAnnotation, r.Default)
	}
	return rt
}
