package report_test

import (
	"fmt"
	"time"

	"github.com/kiln-ci/kiln/internal/report"
)

// A failed run's comment: the marker that finds it again, the stages, the
// outcome with a link, and the log tail fenced so its backticks stay inert.
func ExampleCommentBody() {
	fmt.Print(report.CommentBody(report.Run{
		Repo: "o/r", Pipeline: "web", RunID: "kiln/web/d-42", PR: 7,
		URL: "https://temporal.example.com/namespaces/default/workflows/kiln%2Fweb%2Fd-42",
		Stages: []report.Stage{
			{Name: "build", State: "succeeded", Duration: 83 * time.Second},
			{Name: "test", State: "failed", Duration: 9 * time.Second, Error: "make test: exit status 2"},
			{Name: "publish", State: "cancelled"},
		},
		Outcome: "failed",
		LogTail: "--- FAIL: TestRender\n    want ```go\nFAIL\n",
	}))
	// Output:
	// <!-- kiln:run:kiln/web/d-42 -->
	// ### kiln · web
	//
	// | Stage | State | Duration |
	// |---|---|---|
	// | build | ✅ succeeded | 1m23s |
	// | test | ❌ failed | 9s |
	// | publish | 🚫 cancelled | — |
	//
	// **Outcome:** ❌ failed · [view run `kiln/web/d-42`](https://temporal.example.com/namespaces/default/workflows/kiln%2Fweb%2Fd-42)
	//
	// **test failed:** ` make test: exit status 2 `
	//
	// <details open><summary>Log tail</summary>
	//
	// ````
	// --- FAIL: TestRender
	//     want ```go
	// FAIL
	// ````
	//
	// </details>
}
