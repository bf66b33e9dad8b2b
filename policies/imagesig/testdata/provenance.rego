# A SLSA v1 provenance (predicate type https://slsa.dev/provenance/v1)
# from a builder the platform trusts.
package attestations.provenance

allowed_builders := {
	"https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.1.0",
	"https://build.corp.example/builders/release@v1",
}

deny contains msg if {
	builder := object.get(input.predicate, ["runDetails", "builder", "id"], "")
	not builder in allowed_builders
	msg := sprintf("built by %q, which is not an allowed builder", [builder])
}
