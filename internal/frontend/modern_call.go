package frontend

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/jsonrpc"
	"github.com/vmcp/vmcp/internal/mrtr"
	"github.com/vmcp/vmcp/internal/recovery"
	"github.com/vmcp/vmcp/internal/session"
)

// Bounds of one call's notifications waiting to be written.
const (
	maxCallNotes     = 256
	maxCallNoteBytes = 1 << 20
)

// gatherWindow is how long a call that asked the client for input waits
// for the backend's other requests of the same round (a backend may ask
// for several things at once) before answering InputRequiredResult.
const gatherWindow = 30 * time.Millisecond

// modernCall is one tools/call, prompts/get or resources/read of a modern
// client, possibly over several rounds: when a legacy backend asks the
// client something mid-call (elicitation, sampling, roots), the call
// answers the client's request with an InputRequiredResult and waits,
// parked in the handler's registry, for the retry that carries the
// answers. It is the call's session.Peer. Its methods are safe for
// concurrent use.
type modernCall struct {
	h        *modernHandler
	identity string
	method   string
	name     string
	caps     clientCaps
	cancel   context.CancelFunc

	mu       sync.Mutex
	id       string // in the registry, once it has waited
	logLevel int
	notes    [][]byte
	noteSize int
	fresh    []*inputRequest          // asked by the backend, not yet sent to the client
	asked    map[string]*inputRequest // sent to the client, awaiting its answer
	nextKey  int
	wake     chan struct{} // closed and replaced when anything above changes
	finished bool
	result   json.RawMessage
	err      error
}

type inputRequest struct {
	key    string
	method string
	params json.RawMessage
	answer chan json.RawMessage // buffered: one answer
}

// call serves a request that may need the client's input.
func (h *modernHandler) call(w http.ResponseWriter, r *http.Request, msg *jsonrpc.Message, rm requestMeta, ident string) error {
	name, _ := nameOf(msg.Method, msg.Params)
	var p struct {
		RequestState   *string                    `json:"requestState"`
		InputResponses map[string]json.RawMessage `json:"inputResponses"`
	}
	json.Unmarshal(msg.Params, &p)
	var replace *string
	if p.RequestState != nil {
		st, err := h.sealer.Open(ident, *p.RequestState)
		if err == nil && (st.Method != msg.Method || st.Name != name) {
			err = mrtr.ErrInvalid
		}
		if err != nil {
			text := "Invalid params: requestState failed verification; retry the request without it"
			count := &h.counts.invalidState
			if errors.Is(err, mrtr.ErrExpired) {
				text = "Invalid params: requestState has expired; retry the request without it"
				count = &h.counts.expiredState
			}
			count.Add(1)
			writeHTTPError(w, http.StatusOK, msg.ID, errorf(jsonrpc.CodeInvalidParams, "%s", text))
			return errAnswered
		}
		if st.Call != "" {
			c, ok := h.waiting.Take(st.Call)
			if !ok && st.Replica != "" && st.Replica != h.opts.AdvertiseURL && r.Header.Get(headerForwarded) == "" {
				return h.forward(w, r, msg, st.Replica)
			}
			if !ok {
				h.counts.notWaiting.Add(1)
				writeHTTPError(w, http.StatusOK, msg.ID, errorf(jsonrpc.CodeInvalidParams,
					"Invalid params: the call this requestState continues is no longer waiting; retry the request without it"))
				return errAnswered
			}
			if jerr := c.answerInputs(p.InputResponses); jerr != nil {
				if h.park(c) != nil { // the call still waits for a good answer
					c.cancel()
				}
				writeHTTPError(w, http.StatusOK, msg.ID, jerr)
				return errAnswered
			}
			h.counts.resumed.Add(1)
			c.setLogLevel(rm.logLevel)
			return h.await(w, r, msg.ID, c)
		}
		// The backend's own state: it goes back to the backend.
		replace = &st.Inner
	}
	s, release, ok := h.acquire(w, r, msg.ID, ident, h.s.opts.Pool.Acquire)
	if !ok {
		return errAnswered
	}
	if !offered(s, msg.Method) {
		release()
		writeHTTPError(w, http.StatusNotFound, msg.ID, errorf(jsonrpc.CodeMethodNotFound, "Method not found: %s (no backend offers it)", msg.Method))
		return errAnswered
	}
	params := forwardParams(msg.Params, replace)
	ctx := backend.WithModernCaller(r.Context())
	if rm.logLevel >= 0 {
		h.enableLogging(ctx, s)
	}
	if msg.Method == "tools/call" {
		fwd, jerr := h.paramHeaders(ctx, r, s, name, params)
		if jerr != nil {
			release()
			writeHTTPError(w, http.StatusBadRequest, msg.ID, jerr)
			return errAnswered
		}
		ctx = backend.WithHeaders(ctx, fwd)
	}
	// The call belongs to the client's request until it waits for input;
	// then it outlives that request, and its own timeout or the retry's
	// stream ends it.
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &modernCall{h: h, identity: ident, method: msg.Method, name: name, caps: rm.caps,
		cancel: cancel, logLevel: rm.logLevel, asked: make(map[string]*inputRequest), wake: make(chan struct{})}
	go c.run(ctx, s, release, params)
	return h.await(w, r, msg.ID, c)
}

// paramHeaders checks a tools/call's Mcp-Param-* headers against the
// tool's schema, as the caller sees the tool, and returns those to pass on.
func (h *modernHandler) paramHeaders(ctx context.Context, r *http.Request, s *session.Session, name string, params json.RawMessage) (http.Header, *jsonrpc.Error) {
	tools, err := s.Operations().List(ctx, session.ListTools)
	if err != nil {
		return nil, nil // the call itself reports it
	}
	for _, t := range tools {
		var n struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(t, &n) == nil && n.Name == name {
			return checkParamHeaders(r.Header, t, params)
		}
	}
	return nil, nil
}

// run makes the call on s and records its outcome; release gives s back.
//
// s goes back to the pool before the outcome is recorded, so before the
// client can have its answer: a client that sends its next request once it
// has the answer then finds its session idle, where a release still to
// come would have the pool build it another, without its backend state.
func (c *modernCall) run(ctx context.Context, s *session.Session, release func(), params json.RawMessage) {
	defer c.cancel()
	result, err := c.dispatch(ctx, s, params)
	release()
	c.finish(result, err)
}

// dispatch makes the call on s; a panic is the call's internal error.
func (c *modernCall) dispatch(ctx context.Context, s *session.Session, params json.RawMessage) (result json.RawMessage, err error) {
	defer recovery.Recover(c.h.s.log, func(error) {
		result, err = nil, errors.New("internal error")
	}, "during", "a modern call")
	ctx, hold := backend.WithHold(ctx)
	defer hold.Release()
	return dispatch(session.WithPeer(ctx, c), s, c.method, params)
}

func (c *modernCall) finish(result json.RawMessage, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished {
		return
	}
	c.finished, c.result, c.err = true, result, err
	c.signalLocked()
}

func (c *modernCall) signalLocked() {
	close(c.wake)
	c.wake = make(chan struct{})
}

func (c *modernCall) setLogLevel(l int) {
	c.mu.Lock()
	c.logLevel = l
	c.mu.Unlock()
}

// Expire implements mrtr.Waiting: the client did not retry in time.
func (c *modernCall) Expire() { c.cancel() }

// Notify implements session.Peer. A call's own notifications (progress,
// log messages at the level its request asked for) go on its stream;
// list changes and resource updates belong to no call and go to the
// caller's subscriptions/listen streams.
func (c *modernCall) Notify(ctx context.Context, method string, params json.RawMessage) {
	switch method {
	case "notifications/tools/list_changed", "notifications/prompts/list_changed",
		"notifications/resources/list_changed", "notifications/resources/updated":
		c.h.hub.publish(c.identity, method, params)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if method == "notifications/message" && !levelAllowed(params, c.logLevel) {
		return
	}
	if c.finished || len(c.notes) >= maxCallNotes || c.noteSize+len(params) > maxCallNoteBytes {
		return
	}
	c.notes = append(c.notes, jsonrpc.AppendRequest(nil, nil, method, params))
	c.noteSize += len(params)
	c.signalLocked()
}

// levelAllowed reports whether a notifications/message is at or above the
// request's log level; without one, none is.
func levelAllowed(params json.RawMessage, min int) bool {
	if min < 0 {
		return false
	}
	var p struct {
		Level string `json:"level"`
	}
	json.Unmarshal(params, &p)
	return levelIndex(p.Level) >= min
}

// Request implements session.Peer: the backend asks the client something.
// It becomes one of the call's input requests, answered when the client
// retries; a kind of input the client did not declare is refused at once.
func (c *modernCall) Request(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	var ok bool
	switch method {
	case "elicitation/create":
		ok = c.caps.elicitation
	case "sampling/createMessage":
		ok = c.caps.sampling
	case "roots/list":
		ok = c.caps.roots
	default:
		return nil, jsonrpc.Errorf(jsonrpc.CodeMethodNotFound, "method not found: %s", method)
	}
	if !ok {
		return nil, jsonrpc.Errorf(jsonrpc.CodeMethodNotFound, "the client did not declare the capability %s needs", method)
	}
	if len(params) == 0 {
		params = json.RawMessage(`{}`)
	}
	c.mu.Lock()
	if c.finished {
		c.mu.Unlock()
		return nil, jsonrpc.Errorf(jsonrpc.CodeInternalError, "the call has ended")
	}
	c.nextKey++
	in := &inputRequest{key: "vmcp-" + strconv.Itoa(c.nextKey), method: method, params: params, answer: make(chan json.RawMessage, 1)}
	c.fresh = append(c.fresh, in)
	c.signalLocked()
	c.mu.Unlock()
	select {
	case a := <-in.answer:
		return a, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.asked, in.key)
		for i, f := range c.fresh {
			if f == in {
				c.fresh = append(c.fresh[:i], c.fresh[i+1:]...)
				break
			}
		}
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

// RequestOutliving implements session.OutlivingRequester: a backend on a
// shared connection asks the latest call in flight.
func (c *modernCall) RequestOutliving(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	return c.Request(ctx, method, params)
}

// answerInputs hands the client's inputResponses to the backend requests
// that wait for them. Unknown keys are ignored, as the spec asks; a
// response that is not an object is refused and the call keeps waiting.
func (c *modernCall) answerInputs(responses map[string]json.RawMessage) *jsonrpc.Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range responses {
		if _, ok := c.asked[k]; ok {
			var obj map[string]json.RawMessage
			if json.Unmarshal(v, &obj) != nil || obj == nil {
				return errorf(jsonrpc.CodeInvalidParams, "Invalid params: inputResponses[%q] must be an object", k)
			}
		}
	}
	for k, v := range responses {
		if in, ok := c.asked[k]; ok {
			delete(c.asked, k)
			in.answer <- v
		}
	}
	return nil
}

// park puts c in the registry until the client retries.
func (h *modernHandler) park(c *modernCall) error {
	c.mu.Lock()
	if c.id == "" {
		c.id = mrtr.NewID()
	}
	id := c.id
	c.mu.Unlock()
	return h.waiting.Park(id, c)
}

// await serves one round of c on the request w answers: it writes c's
// notifications as they come, then either its result, or, once the backend
// has asked for input, an InputRequiredResult; c then waits for the retry.
// A client that goes away cancels the call.
func (h *modernHandler) await(w http.ResponseWriter, r *http.Request, id json.RawMessage, c *modernCall) error {
	out := h.newOut(w, r)
	tick := time.NewTicker(modernKeepAlive)
	defer tick.Stop()
	var gather <-chan time.Time
	for {
		c.mu.Lock()
		notes := c.notes
		c.notes, c.noteSize = nil, 0
		finished, result, err := c.finished, c.result, c.err
		// Requests the client's retry left unanswered are asked again,
		// with any new ones, rather than waited on for ever.
		waitingInput := len(c.fresh) > 0 || len(c.asked) > 0
		wake := c.wake
		c.mu.Unlock()
		if werr := out.events(notes); werr != nil {
			c.cancel()
			return werr
		}
		if finished {
			return h.finishCall(r.Context(), out, id, c, result, err)
		}
		if waitingInput && gather == nil {
			gather = time.After(gatherWindow)
		}
		select {
		case <-wake:
		case <-gather:
			return h.askInput(out, id, c)
		case <-tick.C:
			if werr := out.keepAlive(); werr != nil {
				c.cancel()
				return werr
			}
		case <-r.Context().Done():
			c.cancel() // closing the stream cancels the request
			return r.Context().Err()
		case <-h.s.stop:
			c.cancel()
			out.final(http.StatusServiceUnavailable, jsonrpc.AppendError(nil, id, errorf(codeServerError, "server shutting down")))
			return errAnswered
		}
	}
}

// askInput answers the round with an InputRequiredResult carrying every
// request of the backend still unanswered, and parks c.
func (h *modernHandler) askInput(out *modernOut, id json.RawMessage, c *modernCall) error {
	if err := h.park(c); err != nil {
		h.counts.refused.Add(1)
		c.cancel()
		out.final(http.StatusServiceUnavailable, jsonrpc.AppendError(nil, id, errorf(codeServerError, "Too many calls wait for input; retry later")))
		return err
	}
	c.mu.Lock()
	for _, in := range c.fresh {
		c.asked[in.key] = in
	}
	c.fresh = nil
	reqs := make(map[string]any, len(c.asked))
	for k, in := range c.asked {
		reqs[k] = struct {
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}{in.method, in.params}
	}
	st := mrtr.State{Call: c.id, Replica: h.opts.AdvertiseURL, Method: c.method, Name: c.name}
	c.mu.Unlock()
	h.counts.inputRequired.Add(1)
	b, _ := json.Marshal(map[string]any{
		"resultType":    "input_required",
		"inputRequests": reqs,
		"requestState":  h.sealer.Seal(c.identity, st),
		"_meta":         map[string]json.RawMessage{metaServerInfo: h.s.opts.ServerInfo},
	})
	out.final(http.StatusOK, jsonrpc.AppendResult(nil, id, b))
	return nil
}

// finishCall writes c's outcome. A result in which the backend asks for
// input itself (a backend that does MRTR) goes to the client as an
// InputRequiredResult whose requestState seals the backend's.
func (h *modernHandler) finishCall(ctx context.Context, out *modernOut, id json.RawMessage, c *modernCall, result json.RawMessage, err error) error {
	if err != nil {
		status, e := h.rpcError(ctx, err)
		if c.method == "resources/read" && errors.Is(err, session.ErrUnknownResource) {
			e.Data, _ = json.Marshal(map[string]string{"uri": c.name}) // SEP-2164
		}
		out.final(status, jsonrpc.AppendError(nil, id, e))
		return err
	}
	if ir, _ := jsonrpc.Member(result, "inputRequests"); len(ir) > 0 && string(ir) != "null" {
		var inner string
		if rs, _ := jsonrpc.Member(result, "requestState"); len(rs) > 0 {
			json.Unmarshal(rs, &inner)
		}
		sealed, _ := json.Marshal(h.sealer.Seal(c.identity, mrtr.State{Backend: "-", Inner: inner, Method: c.method, Name: c.name}))
		if b, err := jsonrpc.SetMember(result, "requestState", sealed); err == nil {
			result = b
		}
		if b, err := jsonrpc.SetMember(result, "resultType", []byte(`"input_required"`)); err == nil {
			result = b
		}
		result = h.withServerInfo(result)
	} else if c.method == "resources/read" {
		result = h.cacheable(result, true)
	} else {
		result = h.complete(result)
	}
	out.final(http.StatusOK, jsonrpc.AppendResult(nil, id, result))
	return nil
}
