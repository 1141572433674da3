package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/vmcp/vmcp/internal/jsonrpc"
	"github.com/vmcp/vmcp/internal/recovery"
)

// A 2026-07-28 backend that needs something of the client in the middle
// of a call (an elicitation, a sampling, the roots) does not ask: it
// answers with an InputRequiredResult (resultType "input_required",
// inputRequests, requestState), and the client sends the call again with
// inputResponses and the requestState. The modern client turns each input
// request into the legacy request it stands for, sent to the call's
// Handler (which relays it to the client in front, on that call's stream),
// and retries with the answers until the backend's result is final.

// ErrInputRounds means a backend kept asking for input beyond the bound.
var ErrInputRounds = errors.New("backend kept asking for input")

const (
	// maxInputRounds bounds the retries of one call.
	maxInputRounds = 10
	// maxEmptyRounds bounds the retries of a backend that asks for nothing
	// (it sheds load that way).
	maxEmptyRounds = 3
	// maxInputRequests bounds the questions of one round: each is a
	// request to the client in front.
	maxInputRequests = 16
)

// inputRequired is the part of an InputRequiredResult the retry needs.
type inputRequired struct {
	InputRequests map[string]struct {
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	} `json:"inputRequests"`
	RequestState *string `json:"requestState"`
}

// asInputRequired reports whether res is an InputRequiredResult, and
// decodes it if so. The byte check keeps final results free of a parse.
func asInputRequired(res json.RawMessage) (*inputRequired, bool, error) {
	if !bytes.Contains(res, []byte(`"input_required"`)) {
		return nil, false, nil
	}
	rt, _ := jsonrpc.Member(res, "resultType")
	if s, _ := jsonrpc.Unquote(rt); s != "input_required" {
		return nil, false, nil
	}
	var ir inputRequired
	if err := json.Unmarshal(res, &ir); err != nil {
		return nil, true, fmt.Errorf("invalid input_required result: %w", err)
	}
	return &ir, true, nil
}

// callWithInput sends a request, and while the backend answers
// input_required, gets the input from the call's Handler and sends the
// request again with it.
func (c *modernClient) callWithInput(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	p, empty := params, 0
	for round := 1; ; round++ {
		res, err := c.send(ctx, method, p)
		if err != nil {
			return nil, err
		}
		res = anonymous(res)
		if modernCaller(ctx) {
			// The caller answers for itself, on its retry.
			return res, nil
		}
		ir, ok, err := asInputRequired(res)
		switch {
		case err != nil:
			return nil, opError(c.name, method, err)
		case !ok:
			return res, nil
		case round >= maxInputRounds:
			return nil, opError(c.name, method, fmt.Errorf("%w: still input_required after %d rounds", ErrInputRounds, round))
		}
		if len(ir.InputRequests) > maxInputRequests {
			return nil, opError(c.name, method, fmt.Errorf("%w: %d input requests in one round (at most %d)", ErrInputRounds, len(ir.InputRequests), maxInputRequests))
		}
		if len(ir.InputRequests) == 0 {
			if empty++; empty >= maxEmptyRounds {
				return nil, opError(c.name, method, fmt.Errorf("%w: asked for no input %d times (busy)", ErrInputRounds, empty))
			}
		}
		answers, err := c.fulfil(ctx, method, ir)
		if err != nil {
			return nil, err
		}
		if p, err = retryParams(params, answers, ir.RequestState); err != nil {
			return nil, opError(c.name, method, err)
		}
	}
}

// fulfil gets the answer to every input request, at once, from the call's
// Handler. The first failure ends the others and the call: the backend
// cannot go on without the answer.
func (c *modernClient) fulfil(ctx context.Context, method string, ir *inputRequired) (json.RawMessage, error) {
	h := HandlerFrom(ctx, c.handler)
	if h == nil && len(ir.InputRequests) > 0 {
		return nil, opError(c.name, method, jsonrpc.Errorf(jsonrpc.CodeMethodNotFound, "the backend asked for input that no client can give"))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		first   error
		answers = make(map[string]json.RawMessage, len(ir.InputRequests))
	)
	for id, req := range ir.InputRequests {
		switch req.Method {
		case "elicitation/create", "sampling/createMessage", "roots/list":
		default:
			return nil, opError(c.name, method, fmt.Errorf("input request %q: unknown method %q", id, req.Method))
		}
		wg.Go(func() {
			res, err := c.ask(ctx, h, req.Method, req.Params)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = err
					cancel()
				}
				return
			}
			answers[id] = res
		})
	}
	wg.Wait()
	if first != nil {
		return nil, opError(c.name, method, fmt.Errorf("input request: %w", first))
	}
	return json.Marshal(answers)
}

// ask runs the handler for one input request; a handler that panics
// answers an error, as for a legacy backend's request (client.answer).
func (c *modernClient) ask(ctx context.Context, h Handler, method string, params json.RawMessage) (res json.RawMessage, err error) {
	defer recovery.Recover(c.log, func(perr error) {
		res, err = nil, jsonrpc.Errorf(jsonrpc.CodeInternalError, "%s: %v", method, perr)
	}, "backend", c.name, "method", method)
	if len(params) == 0 {
		params = json.RawMessage("{}")
	}
	res, err = h.Request(ctx, method, params)
	if err == nil && len(res) == 0 {
		res = json.RawMessage("{}")
	}
	return res, err
}

// retryParams are the original params with this round's inputResponses
// and the backend's requestState (echoed as it was: it is the backend's,
// and only the backend can read it).
func retryParams(params, answers json.RawMessage, state *string) (json.RawMessage, error) {
	p := params
	if len(bytes.TrimSpace(p)) == 0 || string(p) == "null" {
		p = json.RawMessage("{}")
	}
	p, err := jsonrpc.SetMember(p, "inputResponses", answers)
	if err != nil {
		return nil, fmt.Errorf("params must be an object: %w", err)
	}
	if state != nil {
		if p, err = jsonrpc.SetMember(p, "requestState", jsonrpc.AppendString(nil, *state)); err != nil {
			return nil, err
		}
	}
	return p, nil
}
