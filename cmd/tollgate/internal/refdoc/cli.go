package refdoc

import (
	"bytes"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// CLI renders one page per command of root with cobra's Markdown
// generator, by path under docs/reference (cli/tollgate.md,
// cli/tollgate_check.md, ...). Hidden and deprecated commands are left
// out, as in --help; the completion command the binary adds when it runs
// is in.
func CLI(root *cobra.Command) (map[string][]byte, error) {
	root.InitDefaultCompletionCmd()
	root.DisableAutoGenTag = true // no date in the pages
	pages := map[string][]byte{}
	var walk func(c *cobra.Command) error
	walk = func(c *cobra.Command) error {
		for _, child := range c.Commands() {
			if !child.IsAvailableCommand() || child.IsAdditionalHelpTopicCommand() {
				continue
			}
			if err := walk(child); err != nil {
				return err
			}
		}
		var buf bytes.Buffer
		buf.WriteString("<!-- " + generated + " -->\n\n")
		if err := doc.GenMarkdownCustom(c, &buf, func(name string) string { return name }); err != nil {
			return err
		}
		pages["cli/"+strings.ReplaceAll(c.CommandPath(), " ", "_")+".md"] = buf.Bytes()
		return nil
	}
	return pages, walk(root)
}
