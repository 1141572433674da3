package compat

import (
	"fmt"
	"strings"
	"testing"
)

// samplingBesideOtherCalls runs, in one vmcp session, sampling requests on
// each server-everything transport while other calls to the same backend
// come and go. A stdio child or an SSE stream carries no sign of which
// call a server's request belongs to; with several calls in flight vmcp
// must not tie the request to one of them, else it fails when that call
// ends first ("the client's stream for this call has ended", "context
// canceled"). Every sampling result must carry the client's answer, and
// every echo its own text.
func (s *suite) samplingBesideOtherCalls(t *testing.T) {
	const rounds, echoes = 3, 4
	var branches [][]step
	for _, b := range everythingBackends {
		for r := range rounds {
			branches = append(branches, []step{call(fmt.Sprintf("%s:sampling%d", b, r), "p", b+"_trigger-sampling-request",
				map[string]any{"prompt": fmt.Sprintf("p-%s-%d", b, r), "maxTokens": 10})})
			for e := range echoes {
				msg := fmt.Sprintf("%s-%d-%d", b, r, e)
				branches = append(branches, []step{call(b+":echo"+msg, "p", b+"_echo", map[string]any{"message": msg})})
			}
		}
	}
	rs := s.run(t, []step{connectVMCP("p", s.g.mcp), {Op: "parallel", Branches: branches}, closeSession("p")}, nil)
	rs.get(t, "p:connect")
	for _, b := range everythingBackends {
		for r := range rounds {
			id := fmt.Sprintf("%s:sampling%d", b, r)
			want := fmt.Sprintf("compat-sampled: Resource trigger-sampling-request context: p-%s-%d", b, r)
			if got := rs.get(t, id); got.IsError || !strings.Contains(got.Text, want) {
				t.Errorf("%s = %q (isError %v), want it to contain the client's answer %q", id, tail(got.Text, 300), got.IsError, want)
			}
			for e := range echoes {
				msg := fmt.Sprintf("%s-%d-%d", b, r, e)
				if got := text(t, rs, b+":echo"+msg); got != "Echo: "+msg {
					t.Errorf("echo %s = %q", msg, got)
				}
			}
		}
	}
	rs.get(t, "p:close")
}
