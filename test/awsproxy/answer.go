package awsproxy

import "net/http"

// Answer makes the proxy answer action itself, with a 200 and the body fn
// gives, instead of forwarding it: for the EC2 actions moto does not
// implement (EnableImageDeprecation, DisableImage), so a test can still
// assert on what kiln sent. Faults still apply first.
func (p *Proxy) Answer(action string, fn func(Request) []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.answers == nil {
		p.answers = map[string]func(Request) []byte{}
	}
	p.answers[action] = fn
}

// answer writes the answer of action's answerer, and reports whether it had one.
func (p *Proxy) answer(w http.ResponseWriter, req Request) bool {
	p.mu.Lock()
	fn := p.answers[req.Action]
	p.mu.Unlock()
	if fn == nil {
		return false
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	_, _ = w.Write(fn(req))
	return true
}

// EC2Return is an EC2 query API answer that says only "true", as
// EnableImageDeprecation and DisableImage answer.
func EC2Return(req Request) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?><` + req.Action + `Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">` +
		`<requestId>awsproxy</requestId><return>true</return></` + req.Action + `Response>`)
}
