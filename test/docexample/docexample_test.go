package docexample

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const page = "# Page\n\n" +
	"<!-- example: cli -->\n\n" +
	"```console\n$ tollgate check x.yaml\nx.yaml\n  Deployment shop/web (x.yaml:1)\n…\n1 object checked in 2ms — FAILED\n```\n\n" +
	"<!-- example: demo excerpt numbers -->\n" +
	"```console\n$ kubectl get budgets -A\nNAMESPACE   NAME   SPEND   USED\nml monthly 0.061149 122%\n```\n\n" +
	"<!-- commands -->\n```console\n$ make demo\n```\n\n" +
	"```sh\necho unmarked\n```\n"

func TestParseReadsMarkersAndOptions(t *testing.T) {
	blocks, err := Parse("docs/p.md", []byte(page))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 4 {
		t.Fatalf("got %d blocks, want 4: %+v", len(blocks), blocks)
	}
	cli, demo, cmds, sh := blocks[0], blocks[1], blocks[2], blocks[3]
	if !cli.Marked || cli.Source != "cli" || cli.Excerpt || cli.Lang != "console" || cli.Line != 3 {
		t.Errorf("cli block: %+v", cli)
	}
	if !demo.Excerpt || !demo.Numbers || demo.Source != "demo" {
		t.Errorf("demo block: %+v", demo)
	}
	if !cmds.Commands || cmds.Body != "$ make demo" {
		t.Errorf("commands block: %+v", cmds)
	}
	if sh.Marked || sh.Lang != "sh" {
		t.Errorf("unmarked block: %+v", sh)
	}
}

func TestParseRefusesBadMarkers(t *testing.T) {
	for name, src := range map[string]string{
		"unknown option":  "<!-- example: cli verbose -->\n```console\n```\n",
		"no block":        "<!-- example: cli -->\ntext\n```console\n```\n",
		"at the end":      "text\n<!-- example: cli -->\n",
		"two markers":     "<!-- example: cli -->\n<!-- commands -->\n```console\n```\n",
		"malformed":       "<!-- example cli -->\n```console\n```\n",
		"unclosed fence":  "<!-- example: cli -->\n```console\n$ x\n",
		"empty source":    "<!-- example: -->\n```console\n```\n",
		"marker in block": "```console\n<!-- example: cli -->\n$ x\n```\n<!-- example: cli -->\n",
	} {
		if _, err := Parse("p.md", []byte(src)); err == nil {
			t.Errorf("%s: parsed without an error", name)
		} else if !strings.Contains(err.Error(), "p.md:") {
			t.Errorf("%s: the error does not say where: %v", name, err)
		}
	}
}

func TestMatch(t *testing.T) {
	blocks, err := Parse("docs/p.md", []byte(page))
	if err != nil {
		t.Fatal(err)
	}
	cli, demo := blocks[0].Example, blocks[1].Example
	good := "$ tollgate check x.yaml\nx.yaml\n  Deployment shop/web (x.yaml:1)\n    ENFORCE a\n    ENFORCE b\n1 object checked in 31ms — FAILED\n"
	if err := cli.Match(good); err != nil {
		t.Errorf("a run that differs in a duration and elided lines: %v", err)
	}
	for name, got := range map[string]string{
		"another verdict": strings.Replace(good, "FAILED", "PASSED", 1),
		"a line more":     good + "extra\n",
		"a line missing":  strings.Replace(good, "x.yaml\n  Deployment", "  Deployment", 1),
		"another name":    strings.Replace(good, "shop/web", "shop/api", 1),
		"nothing":         "",
	} {
		if err := cli.Match(got); err == nil {
			t.Errorf("%s: matched", name)
		} else if !strings.Contains(err.Error(), "block line") && !strings.Contains(err.Error(), "goes on") {
			t.Errorf("%s: the error does not name the line: %v", name, err)
		}
	}
	transcript := "── 7. budgets\n$ kubectl get budgets -A\nNAMESPACE NAME SPEND USED\nml monthly 0.07 131%\n\nmore\n"
	if err := demo.Match(transcript); err != nil {
		t.Errorf("an excerpt with other numbers: %v", err)
	}
	if err := demo.Match(strings.Replace(transcript, "ml monthly", "ml weekly", 1)); err == nil {
		t.Error("an excerpt with another word matched")
	}
}

func TestNormalizeForgivesOnlyWhatVaries(t *testing.T) {
	for in, want := range map[string]string{
		"up in 4.1s on https://127.0.0.1:46151": "up in <dur> on https://127.0.0.1:<port>",
		"age   12s   and 3m":                    "age <dur> and <dur>",
		"at 2026-12-06T06:07:24.48368198Z uid 0b1e7a0c-1d2e-4f50-9a6b-7c8d9e0f1a2b": "at <time> uid <uid>",
		"web@sha256:" + strings.Repeat("ab", 32):                                    "web@sha256:<digest>",
		"in /tmp/TestX123/001/f.yaml":                                               "in <tmp>/f.yaml",
		"5 enforce, 0 warn":                                                         "5 enforce, 0 warn",
	} {
		if got := Normalize(in, false); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Normalize("$45,914.24/month at 122%", true); got != "$<n>/month at <n>%" {
		t.Errorf("numbers: %q", got)
	}
}

func TestRewriteKeepsThePageAroundTheBlock(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "README.md"), []byte("# Front door\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "docs", "p.md")
	if err := os.WriteFile(p, []byte(page), 0o600); err != nil {
		t.Fatal(err)
	}
	exs, err := Of(root, "cli")
	if err != nil || len(exs) != 1 {
		t.Fatalf("Of: %v %v", exs, err)
	}
	if err := exs[0].Rewrite(root, "$ tollgate check x.yaml\nnew output\n"); err != nil {
		t.Fatal(err)
	}
	src, _ := os.ReadFile(p)
	want := strings.Replace(page, "x.yaml\n  Deployment shop/web (x.yaml:1)\n…\n1 object checked in 2ms — FAILED\n", "new output\n", 1)
	if string(src) != want {
		t.Errorf("page after rewrite:\n%s\nwant:\n%s", src, want)
	}
}
