package console_test

import (
	"cmp"
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium (make debs installs it).
const chromiumPath = "/usr/bin/chromium"

// browser starts a headless Chromium for one test; screenshots go to the
// artifacts directory ($TOLLGATE_TEST_ARTIFACTS, else a directory under
// the system's temporary one), kept after the test.
func browser(t *testing.T) (context.Context, string) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s not found: the browser tests need Debian's chromium (make debs): %v", chromiumPath, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.WindowSize(1400, 1000),
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancelTimeout)
	// A page that ran script would open a dialog: none may.
	if err := chromedp.Listen(ctx, func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			t.Errorf("a page ran script: dialog %q", d.Message)
		}
	}); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	dir := cmp.Or(os.Getenv("TOLLGATE_TEST_ARTIFACTS"), filepath.Join(os.TempDir(), "tollgate-test-artifacts"))
	dir = filepath.Join(dir, "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return ctx, dir
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// do runs steps, failing the test on an error.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// value runs one action that returns a value, failing the test on an error.
func value[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// What a user sees, in a real browser: the numbers, a Budget's bars drawn
// to them, filters narrowing the table, HTML in a message shown as text.
func TestInABrowser(t *testing.T) {
	base := serve(t, "")
	ctx, dir := browser(t)

	do(t, ctx, chromedp.Navigate(base+"/budgets"))
	const monthly = `tr[data-budget="team-a/monthly"]`
	row := value(t, ctx, chromedp.Text(chromedp.CSS(monthly)))
	for _, want := range []string{"team-a/monthly", "$1,000.00", "$850.00 (85%)", "$1,240.00", "50%", "80%"} {
		if !strings.Contains(row, want) {
			t.Errorf("the Budget's row reads %q, without %q", row, want)
		}
	}
	// Spend $850 and the $1,000 budget against the forecast of $1,240,
	// the longest, on a 320-pixel bar.
	for _, c := range []struct {
		sel, attr string
		want      float64
	}{
		{monthly + " rect.spend", "width", 850.0 / 1240 * 320},
		{monthly + " rect.forecast", "width", 320},
		{monthly + " line.amount", "x1", 1000.0 / 1240 * 320},
	} {
		got := value(t, ctx, chromedp.AttributeValue(chromedp.CSS(c.sel), c.attr)).Value
		if n, err := strconv.Atoi(got); err != nil || math.Abs(float64(n)-c.want) > 1 {
			t.Errorf("%s %s = %q, want %.0f px", c.sel, c.attr, got, c.want)
		}
	}
	screenshot(t, ctx, dir, "budgets")

	// The filters narrow the table, by form, as a user would.
	do(t, ctx, chromedp.Navigate(base+"/reports"))
	if count := value(t, ctx, chromedp.Text(chromedp.CSS("#count"))); count != "10003 results, page 1 of 101." {
		t.Errorf("all results: %q", count)
	}
	screenshot(t, ctx, dir, "reports")
	do(t, ctx,
		chromedp.SetValue(chromedp.CSS("select[name=namespace]"), "team-b"),
		chromedp.Click(chromedp.CSS("form.filters button")),
	)
	// The click navigates: until the new page is there, the old one's
	// nodes go away under the queries, so they are tried again.
	deadline := time.Now().Add(15 * time.Second)
	count := ""
	for time.Now().Before(deadline) {
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err == nil && strings.Contains(loc, "namespace=team-b") {
			if c, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#count"))); err == nil {
				if count = c; count == "3 results." {
					break
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if count != "3 results." {
		t.Fatalf("team-b's results: %q", count)
	}
	imgs := value(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("tbody img").length`))
	text := value(t, ctx, chromedp.Text(chromedp.CSS("tbody")))
	if imgs != 0 || !strings.Contains(text, `image "<img src=x onerror=alert(1)>" is not signed`) {
		t.Errorf("the HTML in a message is not shown as text: %d img elements, %q", imgs, text)
	}
	screenshot(t, ctx, dir, "reports-team-b")

	// The overview's chart has a bar per namespace, drawn to the counts.
	do(t, ctx, chromedp.Navigate(base+"/"))
	bars := value(t, ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('svg[data-chart="Violations by namespace"] g')).map(g => g.dataset.label + "=" + g.dataset.value)`))
	// team-a: 10 × the 667 results of 1,000 that fail or warn; team-b: 2.
	if strings.Join(bars, ",") != "team-a=6670,team-b=2" {
		t.Errorf("violations by namespace: %v", bars)
	}
	screenshot(t, ctx, dir, "overview")
	do(t, ctx, chromedp.Navigate(base+"/exceptions"))
	screenshot(t, ctx, dir, "exceptions")
	do(t, ctx, chromedp.Navigate(base+"/images"))
	screenshot(t, ctx, dir, "images")
}

// alice, who may read team-a only, does not see team-b in the browser.
func TestInABrowserAsAUserOfOneNamespace(t *testing.T) {
	base := serve(t, "alice")
	ctx, dir := browser(t)
	do(t, ctx, chromedp.Navigate(base+"/budgets"))
	body := value(t, ctx, chromedp.Text(chromedp.CSS("main")))
	if !strings.Contains(body, "team-a/monthly") || strings.Contains(body, "team-b") {
		t.Errorf("alice's budgets page: %q", body)
	}
	screenshot(t, ctx, dir, "budgets-alice")
}

// The spend over time is drawn: alice's chart of team-a/monthly is on
// the page, its line as wide as the two days of the period, and the
// numbers beside it read as text.
func TestSpendOverTimeInABrowser(t *testing.T) {
	base := serveWith(t, "alice", spendPrometheus(t).URL())
	ctx, dir := browser(t)
	do(t, ctx, chromedp.Navigate(base+"/budgets"))
	const fig = `figure[data-trend="team-a/monthly"]`
	box := value(t, ctx, chromedp.Evaluate[[]float64](`(() => { const r = document.querySelector('`+fig+` polyline.spend').getBoundingClientRect(); return [r.width, r.height]; })()`))
	if len(box) != 2 || box[0] < 200 || box[1] < 10 {
		t.Errorf("team-a/monthly's spend line is drawn %v px (width, height)", box)
	}
	if text := value(t, ctx, chromedp.Text(chromedp.CSS(fig+" p"))); !strings.Contains(text, "$850.00") || !strings.Contains(text, "budget $1,000.00") {
		t.Errorf("the numbers beside the chart: %q", text)
	}
	screenshot(t, ctx, dir, "budgets-spend")
}
