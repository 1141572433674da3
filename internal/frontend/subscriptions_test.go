package frontend

import (
	"encoding/json"
	"testing"
)

func TestListenFilter(t *testing.T) {
	t.Parallel()
	f := listenFilter{ToolsListChanged: true, ResourceSubscriptions: []string{"file:///a"}}
	tests := []struct {
		method, params string
		want           bool
	}{
		{"notifications/tools/list_changed", `{}`, true},
		{"notifications/prompts/list_changed", `{}`, false},
		{"notifications/resources/list_changed", `{}`, false},
		{"notifications/resources/updated", `{"uri":"file:///a"}`, true},
		{"notifications/resources/updated", `{"uri":"file:///b"}`, false},
		{"notifications/message", `{}`, false},
	}
	for _, tt := range tests {
		if got := f.wants(tt.method, json.RawMessage(tt.params)); got != tt.want {
			t.Errorf("wants(%s %s) = %v, want %v", tt.method, tt.params, got, tt.want)
		}
	}
	var p struct {
		Meta map[string]json.RawMessage `json:"_meta"`
		URI  string                     `json:"uri"`
	}
	json.Unmarshal(tagSubscription(json.RawMessage(`{"uri":"file:///a","_meta":{"k":1}}`), json.RawMessage(`"s1"`)), &p)
	if string(p.Meta[metaSubscriptionID]) != `"s1"` || string(p.Meta["k"]) != "1" || p.URI != "file:///a" {
		t.Errorf("tagged params = %+v", p)
	}
}
