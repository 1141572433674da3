package exampleserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strconv"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type echoIn struct {
	Text string `json:"text" jsonschema:"text to echo back unchanged"`
}

type echoOut struct {
	Text string `json:"text"`
}

type countOut struct {
	Count int `json:"count"`
}

type sleepIn struct {
	MS int `json:"ms" jsonschema:"milliseconds to sleep"`
}

type failIn struct {
	Message string `json:"message" jsonschema:"error message to return"`
}

type progressIn struct {
	Steps int `json:"steps" jsonschema:"number of progress notifications to send"`
}

type whoamiOut struct {
	Name string `json:"name"`
}

type richOut struct {
	Server string   `json:"server"`
	Kinds  []string `json:"kinds"`
}

// addTools registers the stateless tools and counter.
func (s *server) addTools(srv *mcp.Server) {
	mcp.AddTool(srv, &mcp.Tool{Name: "echo", Description: "Return the given text unchanged."}, s.echo)
	mcp.AddTool(srv, &mcp.Tool{Name: "whoami", Description: "Return this server's name."}, s.whoami)
	mcp.AddTool(srv, &mcp.Tool{Name: "counter", Description: "Count calls in this MCP session: returns 1, 2, 3..."}, s.counter)
	mcp.AddTool(srv, &mcp.Tool{Name: "sleep_ms", Description: "Sleep for ms milliseconds, or until cancelled. With a progress token, it first sends one progress notification, so callers can tell the call is in flight."}, s.sleepMS)
	mcp.AddTool(srv, &mcp.Tool{Name: "fail", Description: "Return a tool error carrying message."}, s.fail)
	mcp.AddTool(srv, &mcp.Tool{Name: "rich", Description: "Return text, image, embedded resource and resource link content, structured content and _meta."}, s.rich)
	mcp.AddTool(srv, &mcp.Tool{Name: "progress", Description: "Send steps progress notifications, then return done."}, s.progress)
}

func (s *server) echo(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, echoOut, error) {
	return textResult(in.Text), echoOut(in), nil
}

func (s *server) whoami(_ context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, whoamiOut, error) {
	return textResult(s.name), whoamiOut{Name: s.name}, nil
}

func (s *server) counter(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, countOut, error) {
	st := s.sessions.get(req.Session)
	st.mu.Lock()
	st.count++
	n := st.count
	st.mu.Unlock()
	return textResult(strconv.Itoa(n)), countOut{Count: n}, nil
}

func (s *server) sleepMS(ctx context.Context, req *mcp.CallToolRequest, in sleepIn) (*mcp.CallToolResult, any, error) {
	if in.MS < 0 {
		return nil, nil, fmt.Errorf("ms must not be negative, got %d", in.MS)
	}
	if token := req.Params.GetProgressToken(); token != nil {
		err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
			ProgressToken: token,
			Message:       fmt.Sprintf("sleeping %d ms", in.MS),
		})
		if err != nil {
			return nil, nil, fmt.Errorf("sending progress: %w", err)
		}
	}
	if err := sleep(ctx, time.Duration(in.MS)*time.Millisecond); err != nil {
		return nil, nil, fmt.Errorf("sleep interrupted: %w", err)
	}
	return textResult(fmt.Sprintf("slept %d ms", in.MS)), nil, nil
}

func (s *server) fail(_ context.Context, _ *mcp.CallToolRequest, in failIn) (*mcp.CallToolResult, any, error) {
	return nil, nil, errors.New(in.Message)
}

func (s *server) rich(_ context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, richOut, error) {
	img, err := tinyPNG()
	if err != nil {
		return nil, richOut{}, err
	}
	info := infoURI(s.name)
	res := &mcp.CallToolResult{
		Meta: mcp.Meta{"example/meta": "kept"},
		Content: []mcp.Content{
			&mcp.TextContent{Text: "rich result from " + s.name},
			&mcp.ImageContent{Data: img, MIMEType: "image/png"},
			&mcp.EmbeddedResource{Resource: &mcp.ResourceContents{URI: info, MIMEType: "text/plain", Text: s.infoText()}},
			&mcp.ResourceLink{URI: itemURI(s.name, "1"), Name: "item-1", MIMEType: "text/plain"},
		},
	}
	return res, richOut{Server: s.name, Kinds: []string{"text", "image", "resource", "resource_link"}}, nil
}

func (s *server) progress(ctx context.Context, req *mcp.CallToolRequest, in progressIn) (*mcp.CallToolResult, any, error) {
	if in.Steps < 0 {
		return nil, nil, fmt.Errorf("steps must not be negative, got %d", in.Steps)
	}
	if token := req.Params.GetProgressToken(); token != nil {
		for i := 1; i <= in.Steps; i++ {
			err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
				ProgressToken: token,
				Progress:      float64(i),
				Total:         float64(in.Steps),
				Message:       fmt.Sprintf("step %d of %d", i, in.Steps),
			})
			if err != nil {
				return nil, nil, fmt.Errorf("sending progress: %w", err)
			}
		}
	}
	return textResult("done"), nil, nil
}

func textResult(text string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}
}

// tinyPNG encodes a 1x1 PNG, small enough to pass through anything.
func tinyPNG() ([]byte, error) {
	img := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	img.Set(0, 0, color.NRGBA{R: 0x2a, G: 0x7a, B: 0xe2, A: 0xff})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encoding image: %w", err)
	}
	return buf.Bytes(), nil
}
