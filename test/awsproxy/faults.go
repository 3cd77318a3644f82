package awsproxy

import (
	"fmt"
	"net"
	"net/http"
	"time"
)

// Kind is a fault the proxy can inject instead of forwarding a request.
type Kind int

const (
	// None means the request was forwarded.
	None Kind = iota
	// Throttle answers 400 RequestLimitExceeded (EC2), Throttling (STS) or
	// ThrottlingException (JSON APIs such as KMS): the SDK retries it.
	Throttle
	// ServerError answers 500 InternalError.
	ServerError
	// Reset closes the connection without an answer (TCP RST).
	Reset
	// Down resets every request for the rule's region, whatever the action,
	// as if the regional endpoint were unreachable.
	Down
	// Denied answers access denied as the service would: 403
	// UnauthorizedOperation (EC2), 403 AccessDenied (STS and other query
	// APIs) or 400 AccessDeniedException (JSON APIs such as KMS). The SDK
	// does not retry it.
	Denied
)

// String names the kind for test messages.
func (k Kind) String() string {
	return [...]string{"None", "Throttle", "ServerError", "Reset", "Down", "Denied"}[k]
}

// Rule injects a fault into matching requests. Empty fields match anything.
type Rule struct {
	// Action is the API action to fail; ignored for Down.
	Action string
	// Service restricts the rule to one signing name, e.g. "kms".
	Service string
	// Region restricts the rule to one signing region.
	Region string
	// Times is how many matching requests fail; -1 fails them forever.
	Times int
	// Kind is the fault to inject.
	Kind Kind
	// Match, if set, must also accept the request, e.g. to fail only the
	// AssumeRole calls for one RoleArn. It runs under the proxy's lock, so
	// it must not call the Proxy's methods.
	Match func(Request) bool
}

// matches reports whether r should fail under this rule.
func (rule *Rule) matches(r Request) bool {
	if rule.Times == 0 {
		return false
	}
	if rule.Kind != Down && rule.Action != "" && rule.Action != r.Action {
		return false
	}
	return (rule.Service == "" || rule.Service == r.Service) &&
		(rule.Region == "" || rule.Region == r.Region) &&
		(rule.Match == nil || rule.Match(r))
}

// inject answers w with the fault and returns the status sent (0 for none).
func inject(w http.ResponseWriter, r Request, kind Kind) int {
	switch kind {
	case Throttle:
		return writeError(w, r, http.StatusBadRequest, throttleCode(r), "Rate exceeded (injected by awsproxy)")
	case ServerError:
		return writeError(w, r, http.StatusInternalServerError, "InternalError", "Internal error (injected by awsproxy)")
	case Denied:
		status, code := deniedCode(r)
		msg := fmt.Sprintf("Not authorized to perform %s:%s (injected by awsproxy)", r.Service, r.Action)
		return writeError(w, r, status, code, msg)
	default:
		resetConn(w)
		return 0
	}
}

// throttleCode is the throttling error code each protocol's real service uses.
func throttleCode(r Request) string {
	switch {
	case r.isJSON():
		return "ThrottlingException"
	case r.Service == "ec2":
		return "RequestLimitExceeded"
	default:
		return "Throttling"
	}
}

// deniedCode is the status and error code each protocol's real service
// uses when the caller's policy does not allow the action.
func deniedCode(r Request) (int, string) {
	switch {
	case r.isJSON():
		return http.StatusBadRequest, "AccessDeniedException"
	case r.Service == "ec2":
		return http.StatusForbidden, "UnauthorizedOperation"
	default:
		return http.StatusForbidden, "AccessDenied"
	}
}

// writeError writes an AWS error in the protocol the caller speaks: EC2's
// <Response><Errors>, the other query APIs' <ErrorResponse>, or JSON.
func writeError(w http.ResponseWriter, r Request, status int, code, msg string) int {
	var body string
	switch {
	case r.isJSON():
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		body = fmt.Sprintf(`{"__type":%q,"message":%q}`, code, msg)
	case r.Service == "ec2":
		w.Header().Set("Content-Type", "text/xml")
		body = fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>`+
			`<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors>`+
			`<RequestID>awsproxy</RequestID></Response>`, code, msg)
	default:
		w.Header().Set("Content-Type", "text/xml")
		body = fmt.Sprintf(`<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code>`+
			`<Message>%s</Message></Error><RequestId>awsproxy</RequestId></ErrorResponse>`, code, msg)
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
	return status
}

// resetConn drops the client's connection with a TCP RST, the way a
// load balancer or NAT losing state looks to the SDK.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("awsproxy: ResponseWriter cannot hijack")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// sleepCtx waits d unless the client gives up first.
func sleepCtx(r *http.Request, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-time.After(d):
	case <-r.Context().Done():
	}
}
