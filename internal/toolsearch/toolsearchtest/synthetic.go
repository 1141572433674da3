// Package toolsearchtest generates the synthetic tool catalog of the
// relevance test and the benchmarks: the tools a gateway in front of
// twenty SaaS servers would list. It is deterministic: the same n gives
// the same bytes.
package toolsearchtest

import (
	"encoding/json"
	"fmt"
	"strings"
)

type service struct {
	name, title string
	resources   []string // snake_case
}

func services() []service {
	return []service{
		{"github", "GitHub", []string{"issue", "pull_request", "repository", "branch", "release"}},
		{"jira", "Jira", []string{"issue", "project", "sprint", "comment", "board"}},
		{"slack", "Slack", []string{"message", "channel", "user", "reaction", "file"}},
		{"stripe", "Stripe", []string{"customer", "invoice", "payment", "subscription", "refund"}},
		{"postgres", "PostgreSQL", []string{"table", "view", "index", "schema", "row"}},
		{"s3", "Amazon S3", []string{"bucket", "object", "policy", "lifecycle_rule", "access_point"}},
		{"kubernetes", "Kubernetes", []string{"pod", "deployment", "service", "namespace", "secret"}},
		{"calendar", "Google Calendar", []string{"event", "calendar", "attendee", "reminder", "room"}},
		{"gmail", "Gmail", []string{"email", "draft", "label", "thread", "attachment"}},
		{"drive", "Google Drive", []string{"file", "folder", "permission", "comment", "revision"}},
		{"notion", "Notion", []string{"page", "database", "block", "comment", "user"}},
		{"linear", "Linear", []string{"issue", "project", "cycle", "team", "label"}},
		{"salesforce", "Salesforce", []string{"account", "contact", "lead", "opportunity", "case"}},
		{"zendesk", "Zendesk", []string{"ticket", "user", "organization", "macro", "view"}},
		{"shopify", "Shopify", []string{"product", "order", "customer", "collection", "inventory_item"}},
		{"twilio", "Twilio", []string{"sms", "call", "phone_number", "recording", "conversation"}},
		{"datadog", "Datadog", []string{"monitor", "dashboard", "metric", "log", "incident"}},
		{"pagerduty", "PagerDuty", []string{"incident", "service", "schedule", "escalation_policy", "oncall"}},
		{"hubspot", "HubSpot", []string{"contact", "company", "deal", "ticket", "note"}},
		{"confluence", "Confluence", []string{"page", "space", "comment", "attachment", "label"}},
	}
}

type verb struct {
	name   string
	desc   string // %[1]s: the resource, %[2]s: its plural, %[3]s: the service
	params [][2]string
}

func verbs() []verb {
	return []verb{
		{"list", "List %[2]s in %[3]s, newest first, with optional filters and paging.",
			[][2]string{{"filter", "only %[2]s matching this filter expression"}, {"limit", "how many %[2]s to return at most"}, {"cursor", "where the previous page ended"}}},
		{"get", "Get one %[1]s from %[3]s by its ID, with all its fields.",
			[][2]string{{"id", "the %[1]s's ID"}}},
		{"create", "Create a new %[1]s in %[3]s and return it.",
			[][2]string{{"fields", "the new %[1]s's fields as an object"}}},
		{"update", "Update fields of an existing %[1]s in %[3]s; fields not given keep their values.",
			[][2]string{{"id", "the %[1]s's ID"}, {"fields", "the fields to change"}}},
		{"delete", "Delete a %[1]s from %[3]s permanently. This cannot be undone.",
			[][2]string{{"id", "the %[1]s's ID"}}},
		{"search", "Search %[3]s %[2]s by free text and return the best matches.",
			[][2]string{{"query", "words to search for"}, {"limit", "how many matches to return at most"}}},
		{"archive", "Archive a %[1]s in %[3]s: it is hidden from lists but kept and can be restored.",
			[][2]string{{"id", "the %[1]s's ID"}}},
		{"export", "Export %[3]s %[2]s to a CSV or JSON document.",
			[][2]string{{"format", "csv or json"}, {"filter", "only %[2]s matching this filter expression"}}},
		{"count", "Count the %[2]s in %[3]s that match a filter.",
			[][2]string{{"filter", "only %[2]s matching this filter expression"}}},
		{"watch", "Subscribe to changes of %[2]s in %[3]s and receive an event for each change.",
			[][2]string{{"webhook_url", "where to send the change events"}, {"events", "which kinds of change to send"}}},
	}
}

// Catalog returns n tools named "<service>_<verb>_<resource>", as vmcp
// prefixes them. Past the first 1,000 (20 services × 5 resources × 10
// verbs) the same servers repeat as other instances ("github2_…"), as a
// gateway in front of several tenants' servers would list them.
func Catalog(n int) []json.RawMessage {
	out := make([]json.RawMessage, 0, n)
	svcs, vs := services(), verbs()
	for round := 1; len(out) < n; round++ {
		for _, s := range svcs {
			for _, r := range s.resources {
				for _, v := range vs {
					if len(out) == n {
						return out
					}
					out = append(out, tool(s, r, v, round))
				}
			}
		}
	}
	return out
}

func tool(s service, resource string, v verb, round int) json.RawMessage {
	prefix, title := s.name, s.title
	if round > 1 {
		prefix, title = fmt.Sprintf("%s%d", s.name, round), fmt.Sprintf("%s (instance %d)", s.title, round)
	}
	res := strings.ReplaceAll(resource, "_", " ")
	plural := res + "s"
	if strings.HasSuffix(res, "s") || strings.HasSuffix(res, "x") {
		plural = res + "es"
	} else if strings.HasSuffix(res, "y") && !strings.HasSuffix(res, "ey") {
		plural = res[:len(res)-1] + "ies"
	}
	props := map[string]any{}
	required := []string{}
	for _, p := range v.params {
		props[p[0]] = map[string]any{"type": "string", "description": fmt.Sprintf(p[1], res, plural, title)}
		if p[0] == "id" || p[0] == "query" || p[0] == "fields" {
			required = append(required, p[0])
		}
	}
	t := map[string]any{
		"name":        fmt.Sprintf("%s_%s_%s", prefix, v.name, resource),
		"description": fmt.Sprintf(v.desc, res, plural, title),
		"inputSchema": map[string]any{"type": "object", "properties": props, "required": required},
	}
	b, err := json.Marshal(t)
	if err != nil {
		panic(err) // maps of strings always marshal
	}
	return b
}
