package frontend

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// headerForwarded marks a retry one replica forwarded to another, which
// never forwards it again.
const headerForwarded = "Vmcp-Forwarded"

// forwardedHeaders are the request headers a forwarded retry keeps: what
// the owning replica authenticates and checks again.
var forwardedHeaders = []string{"Authorization", "Accept", "Content-Type", headerProtocolVersion, headerMethod, headerName}

// forward passes a modern client's retry to the replica whose call it
// continues (its requestState names it, sealed, so a client cannot choose
// where vmcp sends it), and copies that replica's answer back as it
// streams. The owner authenticates the request again, as its own.
func (h *modernHandler) forward(w http.ResponseWriter, r *http.Request, msg *jsonrpc.Message, replica string) error {
	body := jsonrpc.AppendRequest(nil, msg.ID, msg.Method, msg.Params)
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, replica, bytes.NewReader(body))
	if err != nil {
		return h.forwardFailed(r.Context(), w, msg, err)
	}
	for _, k := range forwardedHeaders {
		if v := r.Header.Values(k); len(v) > 0 {
			req.Header[http.CanonicalHeaderKey(k)] = v
		}
	}
	for k, v := range r.Header {
		if len(k) > len(headerParamPrefix) && http.CanonicalHeaderKey(k[:len(headerParamPrefix)]) == http.CanonicalHeaderKey(headerParamPrefix) {
			req.Header[k] = v
		}
	}
	req.Header.Set(headerForwarded, "1")
	resp, err := h.s.forwardClient.Do(req)
	if err != nil {
		return h.forwardFailed(r.Context(), w, msg, err)
	}
	defer resp.Body.Close()
	for _, k := range []string{"Content-Type", "Cache-Control", "X-Accel-Buffering"} {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			rc.Flush()
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return nil
			}
			return rerr
		}
	}
}

func (h *modernHandler) forwardFailed(ctx context.Context, w http.ResponseWriter, msg *jsonrpc.Message, err error) error {
	h.s.log.WarnContext(ctx, "forwarding a retry to the replica of its call", "err", err)
	writeHTTPError(w, http.StatusBadGateway, msg.ID, errorf(codeServerError, "the replica holding this call cannot be reached; retry the request without requestState"))
	return err
}
