package awsproxy

import (
	"bytes"
	"regexp"
	"sync"
	"time"
)

var (
	imageIDRe      = regexp.MustCompile(`<imageId>(ami-[0-9a-zA-Z]+)</imageId>`)
	availableState = []byte("<imageState>available</imageState>")
	pendingState   = []byte("<imageState>pending</imageState>")
)

// PendingFor makes AMIs created by CopyImage look as real copies do: pending
// for d after the copy, then available. moto's copies are available at once,
// so without this a waiter never waits. It rewrites DescribeImages answers.
func (p *Proxy) PendingFor(d time.Duration) { p.PendingWhere(d, nil) }

// PendingWhere is PendingFor for the copies whose CopyImage request match
// accepts (nil: all), so a test can hold its own copies pending without
// slowing the tests beside it.
func (p *Proxy) PendingWhere(d time.Duration, match func(Request) bool) {
	var mu sync.Mutex
	copied := map[string]time.Time{}
	p.Rewrite("CopyImage", func(req Request, body []byte) []byte {
		if match != nil && !match(req) {
			return body
		}
		if m := imageIDRe.FindSubmatch(body); m != nil {
			mu.Lock()
			copied[string(m[1])] = time.Now()
			mu.Unlock()
		}
		return body
	})
	p.Rewrite("DescribeImages", func(_ Request, body []byte) []byte {
		mu.Lock()
		defer mu.Unlock()
		return rewriteItems(body, func(item []byte) []byte {
			m := imageIDRe.FindSubmatch(item)
			if m == nil {
				return item
			}
			at, ok := copied[string(m[1])]
			if !ok || time.Since(at) >= d {
				return item
			}
			return bytes.Replace(item, availableState, pendingState, 1)
		})
	})
}

// rewriteItems applies fn to each top-level <item> element of an EC2 XML
// body (one image in DescribeImages) and leaves the rest as it was. Nested
// items, such as block device mappings and tags, stay inside their parent.
func rewriteItems(body []byte, fn func(item []byte) []byte) []byte {
	const openTag, closeTag = "<item>", "</item>"
	var out bytes.Buffer
	depth, start, last := 0, 0, 0
	for i := 0; i < len(body); i++ {
		switch {
		case bytes.HasPrefix(body[i:], []byte(openTag)):
			if depth == 0 {
				start = i
			}
			depth++
		case bytes.HasPrefix(body[i:], []byte(closeTag)) && depth > 0:
			depth--
			if depth == 0 {
				end := i + len(closeTag)
				out.Write(body[last:start])
				out.Write(fn(body[start:end]))
				last = end
			}
		}
	}
	out.Write(body[last:])
	return out.Bytes()
}
