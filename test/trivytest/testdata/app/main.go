// Command app is the Go program the Trivy test images carry: a binary
// whose build information names github.com/google/go-cmp at the version
// in Tollgate's go.mod, a language package Trivy finds in the image.
package main

import (
	"fmt"

	"github.com/google/go-cmp/cmp"
)

func main() {
	fmt.Print(cmp.Diff("a", "b"))
}
