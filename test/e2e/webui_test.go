package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const storyYAML = `repos:
  - name: e2e/story
    clone_url: {{REPO}}
    webhook_secret: {file: {{SECRET}}}
pipelines:
  - name: story
    repo: e2e/story
    triggers: {manual: true}
    stages:
      build:
        buildspec: {version: 0.2, phases: {build: {commands: ["echo telling the story"]}}}
`

// TestWebUITellsTheRunsStory opens a finished run in the Temporal Web UI
// with headless Chromium, as a person would, and reads what the page
// shows: the details kiln set at the start and as stages advanced, and
// the activity summaries that name each bar of the timeline. It keeps a
// screenshot of each page.
func TestWebUITellsTheRunsStory(t *testing.T) {
	t.Parallel()
	browser, err := exec.LookPath("chromium")
	require.NoError(t, err, "this test needs Debian's chromium, which .ci/run installs")
	f := newDevFixture(t, storyYAML, "story-secret", map[string]string{"README.md": "# story\n"})
	ports := freeDevPorts(t)
	dev := startKiln(t, cleanEnv(), append(ports.devArgs(f.data), "--config", f.config)...)
	waitHealthy(t, dev, ports, 60*time.Second)
	stdout, stderr, code := runKiln(t, 90*time.Second, cleanEnv(),
		"run", "--pipeline", "story", "--ref", "main", "--wait", "--temporal-address", ports.address())
	require.Equal(t, 0, code, stderr)
	id := strings.TrimSpace(stdout)
	run := listRuns(t, ports)[id]
	require.NotEmpty(t, run.RunID)
	commit := gitOut(t, f.repo, "rev-parse", "HEAD")

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1400, 1000), chromedp.UserDataDir(t.TempDir()))
	actx, cancel := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	page := fmt.Sprintf("http://127.0.0.1:%d/namespaces/default/workflows/%s/%s/", ports.ui, url.PathEscape(id), run.RunID)

	// The run's details: how it started, and its stages as they ended.
	meta := readPage(t, ctx, page+"user-metadata", "build\tsucceeded")
	assert.Contains(t, meta, "pipeline\tstory")
	assert.Contains(t, meta, "commit\t"+commit)
	assert.Contains(t, meta, "trigger\tmanual")
	assert.Contains(t, meta, "stage\tstate\ttook")
	// Each activity says what it does.
	history := readPage(t, ctx, page+"history", "build "+commit[:12]+" on the worker")
	assert.Contains(t, history, "plan story at main")
}

// readPage loads url and waits until its text, with that of the frames
// the Web UI renders markdown in, holds want; it returns that text and
// saves a screenshot beside the test's other files.
func readPage(t *testing.T, ctx context.Context, url, want string) string {
	t.Helper()
	const text = `[document.body.innerText].concat(Array.from(document.querySelectorAll('iframe')).
		map(f => f.contentDocument ? f.contentDocument.body.innerText : '')).join('\n')`
	var got string
	// The page loads again now and then: the UI's server answers 500 until
	// it has reached Temporal, and its Current Details are a query that a
	// worker answers.
	for deadline := time.Now().Add(45 * time.Second); time.Now().Before(deadline) && !strings.Contains(got, want); {
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(url)))
		for reload := time.Now().Add(8 * time.Second); time.Now().Before(reload); time.Sleep(500 * time.Millisecond) {
			var err error
			if got, err = chromedp.Run(ctx, chromedp.Evaluate[string](text)); err == nil && strings.Contains(got, want) {
				break
			}
		}
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	require.NoError(t, err)
	require.Greater(t, len(shot), 10_000, "the screenshot of %s is blank", url)
	name := filepath.Join(t.TempDir(), filepath.Base(url)+".jpg")
	require.NoError(t, os.WriteFile(name, shot, 0o644))
	require.Contains(t, got, want, "%s does not show %q (screenshot %s)", url, want, name)
	return got
}
