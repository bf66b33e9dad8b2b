package serve

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	authenticationv1 "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationv1 "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
)

// protectMetrics puts h behind the authentication and authorization
// --metrics-auth asks for. With MetricsAuthKubernetes, the request's
// bearer token is checked with a TokenReview and the user's right to get
// the URL path with a SubjectAccessReview, both cached briefly: the
// delegating authentication and authorization of k8s.io/apiserver, as
// controller-runtime's metrics filter wires them. Unlike that filter, a
// token the API server rejects is a 401, as kube-apiserver itself answers
// it, not a 500.
func protectMetrics(opts Options, hc *http.Client, logger *slog.Logger, h http.Handler) (http.Handler, error) {
	if opts.MetricsAuth == MetricsAuthNone {
		logger.Warn("/metrics is served without authentication (--metrics-auth=none)")
		return h, nil
	}
	authn, authz, err := delegatingAuth(opts.REST, hc)
	if err != nil {
		return nil, fmt.Errorf("serve: metrics authentication: %w", err)
	}
	logger = logger.With("component", "metrics")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, ok, err := authn.AuthenticateRequest(r)
		if err != nil || !ok {
			if err != nil {
				logger.DebugContext(r.Context(), "metrics request not authenticated", "remote", r.RemoteAddr, "error", err)
			}
			http.Error(w, "Unauthorized: a bearer token the API server authenticates is required", http.StatusUnauthorized)
			return
		}
		decision, reason, err := authz.Authorize(r.Context(), authorizer.AttributesRecord{
			User: res.User, Verb: strings.ToLower(r.Method), Path: r.URL.Path,
		})
		if err != nil {
			logger.ErrorContext(r.Context(), "metrics authorization failed", "user", res.User.GetName(), "error", err)
			http.Error(w, "authorization could not be checked", http.StatusInternalServerError)
			return
		}
		if decision != authorizer.DecisionAllow {
			logger.DebugContext(r.Context(), "metrics request forbidden", "user", res.User.GetName(), "reason", reason)
			http.Error(w, fmt.Sprintf("Forbidden: %s may not get %s", res.User.GetName(), r.URL.Path), http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	}), nil
}

// delegatingAuth builds the TokenReview authenticator (no anonymous
// access) and the SubjectAccessReview authorizer.
func delegatingAuth(cfg *rest.Config, hc *http.Client) (authenticator.Request, authorizer.Authorizer, error) {
	authnClient, err := authenticationv1.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, nil, err
	}
	authzClient, err := authorizationv1.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, nil, err
	}
	backoff := &wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}
	authn, _, err := authenticatorfactory.DelegatingAuthenticatorConfig{
		Anonymous:                &apiserver.AnonymousAuthConfig{Enabled: false},
		CacheTTL:                 time.Minute,
		TokenAccessReviewClient:  authnClient,
		TokenAccessReviewTimeout: 10 * time.Second,
		WebhookRetryBackoff:      backoff,
	}.New()
	if err != nil {
		return nil, nil, fmt.Errorf("authenticator: %w", err)
	}
	authz, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: authzClient,
		AllowCacheTTL:             5 * time.Minute,
		DenyCacheTTL:              30 * time.Second,
		WebhookRetryBackoff:       backoff,
	}.New()
	if err != nil {
		return nil, nil, fmt.Errorf("authorizer: %w", err)
	}
	return authn, authz, nil
}
