// Package schema checks vmcp's Kubernetes manifests, the kustomization's
// and what the Helm chart renders, against the API's own Go types,
// offline: every field must be one the API knows (a typo such as
// readinesProbe fails), and every value must have the field's type.
// kubeconform validates them as well, against JSON schemas made from the
// Kubernetes OpenAPI spec (kubeconform_test.go).
// It is a module of its own so that vmcp's go.mod does not carry
// k8s.io/api; run it with `make manifests`.
package schema

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/yannh/kubeconform/pkg/validator"
	yamlv3 "gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// types are the kinds the manifests may use.
var types = map[string]func() any{
	"apps/v1 Deployment":            func() any { return &appsv1.Deployment{} },
	"v1 Service":                    func() any { return &corev1.Service{} },
	"v1 ConfigMap":                  func() any { return &corev1.ConfigMap{} },
	"v1 Secret":                     func() any { return &corev1.Secret{} },
	"policy/v1 PodDisruptionBudget": func() any { return &policyv1.PodDisruptionBudget{} },
}

// TestManifestsMatchTheAPI decodes the kustomization's objects and the
// chart's strictly into their API types, and validates them with
// kubeconform.
func TestManifestsMatchTheAPI(t *testing.T) {
	v := kubeconform(t)
	for _, tc := range []struct {
		name   string
		stream func(t *testing.T) []byte
		want   int
	}{
		// Its ConfigMap comes from configMapGenerator: kustomize writes it.
		{"kustomization's resources", kustomizationResources, 6},
		// Without the Secret, which the chart expects to exist.
		{"chart", func(t *testing.T) []byte { return chart(t) }, 6},
		// Its other branches: no Redis, no PodDisruptionBudget.
		{"chart with one replica and an outside Redis", func(t *testing.T) []byte {
			return chart(t, "--set", "replicas=1,redis.enabled=false,redis.address=redis.example:6379")
		}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := tc.stream(t)
			if n := decodeStrict(t, tc.name, stream); n < tc.want {
				t.Errorf("decoded %d objects, want %d", n, tc.want)
			}
			n := 0
			for _, r := range v.Validate(tc.name, io.NopCloser(bytes.NewReader(stream))) {
				switch r.Status {
				case validator.Valid:
					n++
				case validator.Empty:
				default:
					t.Errorf("kubeconform: %v", r.Err)
				}
			}
			if n < tc.want {
				t.Errorf("kubeconform validated %d objects, want %d", n, tc.want)
			}
		})
	}
}

// kustomizationResources returns the kustomization's resources files as
// one YAML stream.
func kustomizationResources(t *testing.T) []byte {
	t.Helper()
	var k struct {
		Resources []string `yaml:"resources"`
	}
	b, err := os.ReadFile(filepath.Join("..", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yamlv3.Unmarshal(b, &k); err != nil || len(k.Resources) == 0 {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	var stream bytes.Buffer
	for _, f := range k.Resources {
		b, err := os.ReadFile(filepath.Join("..", f))
		if err != nil {
			t.Fatal(err)
		}
		stream.WriteString("---\n")
		stream.Write(b)
	}
	return stream.Bytes()
}

// chart returns what `helm template` renders of deploy/helm/vmcp, with
// args (values) added. It needs bin/helm (make helm): without it the test
// is skipped, or fails in CI.
func chart(t *testing.T, args ...string) []byte {
	t.Helper()
	helm := filepath.Join("..", "..", "..", "bin", "helm")
	if p := os.Getenv("VMCP_HELM"); p != "" {
		helm = p
	}
	if _, err := exec.LookPath(helm); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found (%v); .ci/run installs it: make helm", helm, err)
		}
		t.Skipf("%s not found; to run this test: make helm (or set VMCP_HELM)", helm)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(helm, append([]string{"template", "vmcp", filepath.Join("..", "..", "helm", "vmcp")}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr.Bytes())
	}
	return out
}

// decodeStrict decodes each object of a YAML stream into its API type,
// rejecting unknown fields, and returns how many it decoded.
func decodeStrict(t *testing.T, source string, stream []byte) int {
	t.Helper()
	n := 0
	dec := yamlv3.NewDecoder(bytes.NewReader(stream))
	for {
		var doc yamlv3.Node
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		raw, err := yamlv3.Marshal(&doc)
		if err != nil {
			t.Fatal(err)
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(raw, &head); err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		if head.Kind == "" {
			continue // an empty document
		}
		mk := types[head.APIVersion+" "+head.Kind]
		if mk == nil {
			t.Errorf("%s: %s %s is not a kind this check knows", source, head.APIVersion, head.Kind)
			continue
		}
		if err := yaml.UnmarshalStrict(raw, mk()); err != nil {
			t.Errorf("%s: %s: %v", source, head.Kind, err)
		}
		n++
	}
	return n
}
