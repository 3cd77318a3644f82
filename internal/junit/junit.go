// Package junit reads JUnit XML test reports, the format most test tools can
// write (Maven surefire, pytest --junitxml, go-junit-report, jest-junit), and
// sums them up: how many tests passed, failed, errored and were skipped, and
// which ones failed.
//
// It counts the <testcase> elements a report holds rather than trusting its
// suites' tests/failures attributes, which tools get wrong, and it reads the
// report as a stream, keeping only a bounded summary.
package junit

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/encoding/charmap"
)

// ErrNotJUnit says a file is not a JUnit XML report: not XML at all, or XML
// whose root is neither <testsuites> nor <testsuite>. Parse wraps it with
// the detail.
var ErrNotJUnit = errors.New("not a JUnit XML report")

// maxText bounds the failure text kept while looking for its first line.
const maxText = 4 << 10

// Parse reads one JUnit XML report. Its root must be <testsuites> or
// <testsuite>; suites may nest. Within a <testcase>, an <error> counts it as
// an error, else a <failure> as failed, else a <skipped> as skipped; any
// other child (system-out, surefire's flakyFailure) leaves it passed.
// Reading stops at the end of the root element.
func Parse(r io.Reader) (Summary, error) {
	d := xml.NewDecoder(r)
	d.CharsetReader = charsetReader
	root, err := rootElement(d)
	if err != nil {
		return Summary{}, err
	}
	p := &parser{d: d}
	if err := p.walk(root); err != nil {
		return Summary{}, err
	}
	return p.sum, nil
}

// rootElement returns the first element, refusing text before it: a log or
// a JSON file would otherwise read as XML with no elements.
func rootElement(d *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return xml.StartElement{}, fmt.Errorf("%w: the file holds no XML element", ErrNotJUnit)
		}
		if err != nil {
			return xml.StartElement{}, xmlError(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local != "testsuites" && t.Name.Local != "testsuite" {
				return t, fmt.Errorf("%w: the root element is <%s>, not <testsuites> or <testsuite>", ErrNotJUnit, t.Name.Local)
			}
			return t, nil
		case xml.CharData:
			if len(strings.TrimSpace(string(t))) > 0 {
				return xml.StartElement{}, fmt.Errorf("%w: the file does not start with an XML element", ErrNotJUnit)
			}
		}
	}
}

// parser sums up one report.
type parser struct {
	d   *xml.Decoder
	sum Summary
}

// walk reads the suites under root. It keeps the open suites' names on a
// stack rather than recursing, so deep nesting costs memory, not Go stack.
func (p *parser) walk(root xml.StartElement) error {
	suites := []string{attr(root, "name")}
	for len(suites) > 0 {
		tok, err := p.d.Token()
		if err != nil {
			return xmlError(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "testsuite", "testsuites":
				suites = append(suites, attr(t, "name"))
			case "testcase":
				err = p.testcase(t, suites[len(suites)-1])
			default: // properties, system-out...
				err = p.d.Skip()
			}
			if err != nil {
				return xmlError(err)
			}
		case xml.EndElement:
			suites = suites[:len(suites)-1]
		}
	}
	return nil
}

// Outcomes of a test case, ranked: the highest found in a case counts.
const (
	passed = iota
	skipped
	failed
	errored
)

// testcase reads one <testcase> up to its end and counts it.
func (p *parser) testcase(start xml.StartElement, suite string) error {
	c := Case{Suite: suite, Class: attr(start, "classname"), Name: attr(start, "name")}
	outcome := passed
	for {
		tok, err := p.d.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			kind := outcomeOf(t.Name.Local)
			if kind == failed || kind == errored {
				msg, err := p.message(t)
				if err != nil {
					return err
				}
				if kind > outcome {
					outcome, c.Message = kind, msg
				}
				continue
			}
			outcome = max(outcome, kind)
			if err := p.d.Skip(); err != nil {
				return err
			}
		case xml.EndElement:
			p.count(outcome, c, seconds(attr(start, "time")))
			return nil
		}
	}
}

// outcomeOf is the outcome a child element of <testcase> gives it.
func outcomeOf(child string) int {
	switch child {
	case "error":
		return errored
	case "failure":
		return failed
	case "skipped":
		return skipped
	}
	return passed
}

// count records a finished test case.
func (p *parser) count(outcome int, c Case, t time.Duration) {
	s := &p.sum
	s.Total++
	s.Time += t
	switch outcome {
	case passed:
		s.Passed++
	case skipped:
		s.Skipped++
	case failed:
		s.Failed++
		s.keep(c)
	case errored:
		s.Errors++
		s.keep(c)
	}
}

// message reads a <failure> or <error> to its end and says why the case
// failed; see Case.Message.
func (p *parser) message(start xml.StartElement) (string, error) {
	var text strings.Builder
	for depth := 1; depth > 0; {
		tok, err := p.d.Token()
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if text.Len() < maxText {
				text.Write(t[:min(len(t), maxText-text.Len())])
			}
		}
	}
	msg := attr(start, "message")
	if line := firstLine(text.String()); line != "" && (strings.TrimSpace(msg) == "" || strings.EqualFold(strings.TrimSpace(msg), "failed")) {
		msg = line
	}
	return oneLine(msg), nil
}

func attr(e xml.StartElement, name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// seconds reads a time attribute. Tools write "1.5", "1,234.5" or, in
// some locales, "1,5"; anything unreadable counts as no time.
func seconds(s string) time.Duration {
	s = strings.TrimSpace(s)
	if strings.Contains(s, ".") {
		s = strings.ReplaceAll(s, ",", "")
	} else {
		s = strings.ReplaceAll(s, ",", ".")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1e9 {
		return 0
	}
	return time.Duration(math.Round(f * float64(time.Second)))
}

// xmlError passes on a decoding error: an *xml.SyntaxError already names
// its line, and a read error (a size limit) is the reader's to explain. An
// end of file inside the root element is unexpected however it is reported.
func xmlError(err error) error {
	if err == io.EOF {
		return errors.New("XML syntax error: the file ends inside the root element")
	}
	return err
}

// charsetReader decodes the 8-bit encodings older Java and Windows tools
// declare; encoding/xml itself reads only UTF-8.
func charsetReader(label string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "us-ascii", "ascii":
		return in, nil
	case "iso-8859-1", "iso_8859-1", "latin1", "latin-1", "l1":
		return charmap.ISO8859_1.NewDecoder().Reader(in), nil
	case "windows-1252", "cp1252":
		return charmap.Windows1252.NewDecoder().Reader(in), nil
	}
	return nil, fmt.Errorf("encoding %q is not supported; write reports in UTF-8", label)
}
