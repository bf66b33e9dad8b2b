// Package loader keeps the policy set in force: it reads TollgatePolicy,
// TollgateConfig, TollgateException and TollgateImagePolicy objects from the
// cluster (beside the built-in library, --policy files and the config file),
// and other policy formats through a Format each (GatekeeperFormat:
// ConstraintTemplates and Constraints), compiles them off the request path,
// and publishes each good load whole as a review.Set. A policy or config
// that does not load is reported in its status (a format's object, in an
// Event) and the last good version stays in force. The webhook, the audit
// and the CLI read what it publishes; it imports none of them.
package loader
