package httplimit

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// WriteProblem is the default DenyHandler. It answers d.Status with an RFC 9457
// application/problem+json body. A 429 uses the problem type
// https://iana.org/assignments/http-problem-types#quota-exceeded with the
// "violated-policies" member listing the rules that denied the request; other statuses
// use about:blank with a detail naming the cause.
func WriteProblem(w http.ResponseWriter, r *http.Request, d *Decision) {
	status := d.Status
	if status == 0 {
		status = http.StatusTooManyRequests
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	w.Write(problemBody(status, d))
}

// problemURL is the IETF problem type for a request over its quota.
const problemURL = "https://iana.org/assignments/http-problem-types#quota-exceeded"

func problemBody(status int, d *Decision) []byte {
	b := make([]byte, 0, 256)
	if status == http.StatusTooManyRequests {
		b = append(b, `{"type":"`+problemURL+`","title":"Request cannot be satisfied as assigned quota has been exceeded","status":429,"violated-policies":[`...)
		first := true
		for _, rr := range d.Results() {
			if rr.Result.Allowed {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendJSONString(b, rr.Name)
		}
		b = append(b, "]}\n"...)
		return b
	}
	b = append(b, `{"type":"about:blank","title":`...)
	b = appendJSONString(b, http.StatusText(status))
	b = append(b, `,"status":`...)
	b = fmt.Appendf(b, "%d", status)
	if d.Err != nil && status != http.StatusInternalServerError && status != http.StatusServiceUnavailable {
		// Client errors explain themselves; server-side causes stay in OnError.
		b = append(b, `,"detail":`...)
		b = appendJSONString(b, d.Err.Error())
	}
	b = append(b, "}\n"...)
	return b
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}
