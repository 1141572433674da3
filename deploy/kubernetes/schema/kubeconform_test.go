package schema

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yannh/kubeconform/pkg/validator"
)

// The OpenAPI spec kubeconform's schemas are made from: that of the
// Kubernetes release whose k8s.io/api (v0.37.2) the strict decode uses,
// shipped in the k8s.io/kubernetes module (api/openapi-spec), and pinned
// by its go.sum hash as a require would be.
const (
	kubernetesModule = "k8s.io/kubernetes@v1.37.2"
	kubernetesSum    = "h1:A2VDEiObzkYqFTKhSsn0ZEb0RlLEXpHWj93gi2HqEwE="
)

// kubeconform returns a strict kubeconform validator over JSON schemas it
// makes from the Kubernetes OpenAPI spec, offline: kubeconform's usual
// schemas are downloaded from a web site. Strict, as kubeconform's own
// -strict schemas: an object with properties takes no others. Beyond the
// strict decode, it checks what the Go types cannot: required fields
// (a container's name, a Service port's port).
func kubeconform(t *testing.T) validator.Validator {
	t.Helper()
	var spec struct {
		Definitions map[string]any `json:"definitions"`
	}
	b, err := os.ReadFile(filepath.Join(moduleDir(t, kubernetesModule, kubernetesSum), "api", "openapi-spec", "swagger.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatalf("swagger.json: %v", err)
	}
	for _, d := range spec.Definitions {
		strict(d)
	}
	dir := t.TempDir()
	writeJSON(t, filepath.Join(dir, "_definitions.json"), map[string]any{"definitions": spec.Definitions})
	// One file per kind, named as kubeconform looks it up: deployment-apps-v1.json.
	for name, d := range spec.Definitions {
		gvks, _ := d.(map[string]any)["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			g, _ := g.(map[string]any)
			group, _ := g["group"].(string)
			version, _ := g["version"].(string)
			kind, _ := g["kind"].(string)
			suffix := "-" + version
			if group != "" {
				suffix = "-" + strings.Split(group, ".")[0] + suffix
			}
			writeJSON(t, filepath.Join(dir, strings.ToLower(kind)+suffix+".json"),
				map[string]any{"$ref": "_definitions.json#/definitions/" + name})
		}
	}
	v, err := validator.New([]string{filepath.Join(dir, "{{ .ResourceKind }}{{ .KindSuffix }}.json")}, validator.Opts{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// strict makes an OpenAPI schema strict JSON schema, as kubeconform's are:
// no properties but those listed, and int-or-string either.
func strict(v any) {
	switch v := v.(type) {
	case map[string]any:
		if v["format"] == "int-or-string" {
			delete(v, "type")
			delete(v, "format")
			v["oneOf"] = []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}
		}
		if _, ok := v["properties"]; ok {
			if _, ok := v["additionalProperties"]; !ok {
				v["additionalProperties"] = false
			}
		}
		for _, x := range v {
			strict(x)
		}
	case []any:
		for _, x := range v {
			strict(x)
		}
	}
}

// moduleDir downloads a module with the go command (from the module cache
// when it is there) and returns its directory, after checking its hash.
func moduleDir(t *testing.T, module, sum string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("go", "mod", "download", "-json", module)
	cmd.Dir = t.TempDir() // outside this module: it does not require it
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v\n%s%s", module, err, out, stderr.Bytes())
	}
	var m struct{ Dir, Sum string }
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	if m.Sum != sum {
		t.Fatalf("%s has hash %s, want %s", module, m.Sum, sum)
	}
	return m.Dir
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
