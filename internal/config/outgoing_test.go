package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestOutgoingAuthParses(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(`backends:
  - name: a
    transport: streamable-http
    url: http://127.0.0.1:1/mcp
    outgoingAuth:
      type: tokenExchange
      tokenURL: https://idp.example.com/oauth/token
      clientID: vmcp
      clientSecretEnv: A_SECRET
      audience: files
      scopes: [files.read, files.write]
      resource: https://files.example.com/mcp
  - name: b
    transport: sse
    url: http://127.0.0.1:2/sse
    outgoingAuth: {type: clientCredentials, tokenURL: "http://127.0.0.1:3/token", clientID: c, clientSecretEnv: B_SECRET}
  - name: c
    transport: streamable-http
    url: http://127.0.0.1:4/mcp
    headers: {Authorization: "Bearer static"}
    outgoingAuth: {type: none}
`), envMap(map[string]string{"A_SECRET": "s3cret-a", "B_SECRET": "s3cret-b"}))
	if err != nil {
		t.Fatal(err)
	}
	want := &OutgoingAuth{Type: OutgoingTokenExchange, TokenURL: "https://idp.example.com/oauth/token", ClientID: "vmcp",
		ClientSecretEnv: "A_SECRET", Audience: "files", Scopes: []string{"files.read", "files.write"}, Resource: "https://files.example.com/mcp"}
	if got := cfg.Backends[0].OutgoingAuth; !reflect.DeepEqual(got, want) {
		t.Errorf("backends[0].outgoingAuth = %+v, want %+v", got, want)
	}
	if got := cfg.Backends[1].OutgoingAuth; got.Type != OutgoingClientCredentials || got.ClientSecretEnv != "B_SECRET" {
		t.Errorf("backends[1].outgoingAuth = %+v", got)
	}
	if got := cfg.Backends[2].OutgoingAuth; got.Type != OutgoingNone {
		t.Errorf("backends[2].outgoingAuth = %+v", got)
	}
	// The secret itself is never part of the Config.
	if s := strings.Join([]string{cfg.Backends[0].OutgoingAuth.ClientSecretEnv, cfg.Backends[1].OutgoingAuth.ClientSecretEnv}, " "); strings.Contains(s, "s3cret") {
		t.Errorf("secret read into the config: %s", s)
	}
}

func TestOutgoingAuthErrors(t *testing.T) {
	t.Parallel()
	const head = `backends:
  - name: a
    transport: streamable-http
    url: http://127.0.0.1:1/mcp
`
	env := envMap(map[string]string{"SET": "the-secret-value", "EMPTY": ""})
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown type", head + "    outgoingAuth: {type: passthrough}\n",
			[]string{`line 5: backends[0].outgoingAuth.type: must be one of none, clientCredentials, tokenExchange (got "passthrough")`}},
		{"missing fields", head + "    outgoingAuth: {type: clientCredentials}\n", []string{
			"line 5: backends[0].outgoingAuth.tokenURL: required: the token endpoint of the authorization server",
			"line 5: backends[0].outgoingAuth.clientID: required",
			"line 5: backends[0].outgoingAuth.clientSecretEnv: required: the name of the environment variable that holds the client secret",
		}},
		{"secret not in the environment", head + `    outgoingAuth:
      type: tokenExchange
      tokenURL: http://127.0.0.1:2/token
      clientID: vmcp
      clientSecretEnv: UNSET
`, []string{"line 9: backends[0].outgoingAuth.clientSecretEnv: environment variable UNSET is not set or empty"}},
		{"empty secret", head + "    outgoingAuth: {type: tokenExchange, tokenURL: \"http://127.0.0.1:2/t\", clientID: v, clientSecretEnv: EMPTY}\n",
			[]string{"line 5: backends[0].outgoingAuth.clientSecretEnv: environment variable EMPTY is not set or empty"}},
		{"secret written in place of its name", head + "    outgoingAuth: {type: tokenExchange, tokenURL: \"http://127.0.0.1:2/t\", clientID: v, clientSecretEnv: \"${SET}\"}\n",
			[]string{`line 5: backends[0].outgoingAuth.clientSecretEnv: must be the name of an environment variable, such as FILES_CLIENT_SECRET (got "${SET}")`}},
		{"bad token URL and scope", head + `    outgoingAuth:
      type: clientCredentials
      tokenURL: /token
      clientID: vmcp
      clientSecretEnv: SET
      scopes: ["a b"]
      resource: https://files
`, []string{
			"line 7: backends[0].outgoingAuth.tokenURL: must be an absolute http or https URL, such as http://127.0.0.1:8081/mcp",
			`line 10: backends[0].outgoingAuth.scopes[0]: must be one scope token, without spaces or quotes (got "a b")`,
			"line 11: backends[0].outgoingAuth.resource: only valid with type tokenExchange",
		}},
		{"fields with type none", head + "    outgoingAuth: {type: none, clientID: v}\n",
			[]string{"line 5: backends[0].outgoingAuth.clientID: only valid with type clientCredentials or tokenExchange"}},
		{"authorization header too", `backends:
  - name: a
    transport: streamable-http
    url: http://127.0.0.1:1/mcp
    headers: {authorization: "Bearer x"}
    outgoingAuth: {type: clientCredentials, tokenURL: "http://127.0.0.1:2/t", clientID: v, clientSecretEnv: SET}
`, []string{"line 5: backends[0].headers.authorization: cannot be set with outgoingAuth type clientCredentials, which sets it"}},
		{"stdio", `backends:
  - name: a
    transport: stdio
    command: [x]
    outgoingAuth: {type: clientCredentials, tokenURL: "http://127.0.0.1:2/t", clientID: v, clientSecretEnv: SET}
`, []string{"line 5: backends[0].outgoingAuth: only valid with transports streamable-http and sse"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.yaml), env)
			assertErrors(t, err, tt.want)
			if err != nil && strings.Contains(err.Error(), "the-secret-value") {
				t.Errorf("an error quotes the secret: %v", err)
			}
		})
	}
}
