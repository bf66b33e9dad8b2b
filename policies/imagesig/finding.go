package imagesig

import (
	"github.com/tollgate-dev/tollgate/policies"
)

// FindingPrefix starts the policy id of image-policy findings:
// "image-policy/<TollgateImagePolicy name>", the id exceptions name.
const FindingPrefix = "image-policy/"

// Finding reports an image that an image policy does not allow, in the
// form of the engine's findings, so the webhook, the CLI and the decision
// log show it beside the other policies' findings. action is ActionDeny
// (enforced) or ActionWarn.
func Finding(policyName string, img policies.ContainerImage, action, reason string) policies.Finding {
	a := policies.ActionEnforce
	if action == ActionWarn {
		a = policies.ActionWarn
	}
	return policies.Finding{
		Policy: FindingPrefix + policyName, Title: "Images are signed by a trusted authority",
		Message: reason, Severity: policies.SeverityHigh, Action: a, Path: img.Path,
		Remediation: "Use an image signed by an authority the TollgateImagePolicy " + policyName +
			" names; Tollgate pins it to the digest it verified.",
	}
}

// FailAction is what an image the policy cannot verify gets: deny in
// Enforce mode, warn in Warn mode.
func (p *Policy) FailAction() string {
	if p.Enforce() {
		return ActionDeny
	}
	return ActionWarn
}
