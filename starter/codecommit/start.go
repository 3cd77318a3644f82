package codecommit

import "time"

// startTimeout bounds starting runs, well inside the 5 second timeout of an
// EventBridge API destination call. A call that times out is retried with the
// same event id, and the workflow ID makes the retry start nothing twice.
const startTimeout = 4 * time.Second
