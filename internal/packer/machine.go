package packer

import (
	"regexp"
	"strings"
)

// record is one line of `packer build -machine-readable` output:
// timestamp,target,type,data... with data fields unescaped.
type record struct {
	Target string
	Type   string
	Data   []string
}

// parseRecord splits a machine-readable line. Packer escapes a comma inside a
// field as %!(PACKER_COMMA) and newlines as the two characters \n, so a plain
// split on commas is exact. ok is false for lines that are not records.
func parseRecord(line string) (r record, ok bool) {
	f := strings.Split(strings.TrimRight(line, "\r\n"), ",")
	if len(f) < 3 || f[2] == "" || !isDigits(f[0]) {
		return record{}, false
	}
	r = record{Target: unescape(f[1]), Type: f[2]}
	for _, d := range f[3:] {
		r.Data = append(r.Data, unescape(d))
	}
	return r, true
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// unescaper undoes packer's machine-readable escaping of one field.
var unescaper = strings.NewReplacer(`%!(PACKER_COMMA)`, ",", `\n`, "\n", `\r`, "\r")

func unescape(s string) string { return unescaper.Replace(s) }

// escape is packer's escaping; kiln uses it to find secrets in raw lines.
func escape(s string) string {
	return strings.NewReplacer(",", `%!(PACKER_COMMA)`, "\n", `\n`, "\r", `\r`).Replace(s)
}

// uiText returns the message of a ui record (say, message or error).
func (r record) uiText() (kind, text string, ok bool) {
	if r.Type != "ui" || len(r.Data) < 2 {
		return "", "", false
	}
	return r.Data[0], strings.Join(r.Data[1:], ","), true
}

// buildError returns the message of a per-build `<target>,error,<msg>` record.
func (r record) buildError() (string, bool) {
	if r.Type != "error" || r.Target == "" || len(r.Data) == 0 {
		return "", false
	}
	return strings.Join(r.Data, ","), true
}

// amiPair is one region:ami-… element of an amazon artifact id.
var amiPair = regexp.MustCompile(`^([a-z]{2}(?:-[a-z]+)+-\d+):(ami-[0-9a-f]+)$`)

// artifactIDs returns the AMIs of an `artifact,0,id` record. Only index 0 is
// the builder's own artifact: a manifest post-processor repeats it as 1.
func (r record) artifactIDs() []Artifact {
	if r.Type != "artifact" || len(r.Data) < 3 || r.Data[0] != "0" || r.Data[1] != "id" {
		return nil
	}
	var out []Artifact
	for _, p := range strings.Split(strings.Join(r.Data[2:], ","), ",") {
		if m := amiPair.FindStringSubmatch(strings.TrimSpace(p)); m != nil {
			out = append(out, Artifact{Region: m[1], AMI: m[2]})
		}
	}
	return out
}
