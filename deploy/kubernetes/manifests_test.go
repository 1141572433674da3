// Package kubernetes holds vmcp's Kubernetes manifests; its test checks
// what a rollout depends on, offline, in the kustomization and in the Helm
// chart (deploy/helm/vmcp) alike: the Deployment, Service, probes and
// PodDisruptionBudget agree, and the ConfigMap is a config vmcp accepts
// with the pod's environment.
package kubernetes

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/fixture"
)

// object is the part of a manifest the checks read.
type object struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Replicas        *int      `yaml:"replicas"`
		SessionAffinity string    `yaml:"sessionAffinity"`
		Selector        yaml.Node `yaml:"selector"`
		MinAvailable    *int      `yaml:"minAvailable"`
		Template        struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				Containers                    []struct {
					Name string   `yaml:"name"`
					Args []string `yaml:"args"`
					Env  []struct {
						Name  string `yaml:"name"`
						Value string `yaml:"value"`
					} `yaml:"env"`
					EnvFrom []struct {
						SecretRef struct {
							Name string `yaml:"name"`
						} `yaml:"secretRef"`
					} `yaml:"envFrom"`
					LivenessProbe  probe `yaml:"livenessProbe"`
					ReadinessProbe probe `yaml:"readinessProbe"`
					VolumeMounts   []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
						SubPath   string `yaml:"subPath"`
					} `yaml:"volumeMounts"`
					SecurityContext struct {
						ReadOnlyRootFilesystem bool `yaml:"readOnlyRootFilesystem"`
					} `yaml:"securityContext"`
				} `yaml:"containers"`
				SecurityContext struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
				} `yaml:"securityContext"`
				Volumes []struct {
					Name      string `yaml:"name"`
					ConfigMap struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

// kustomization returns the kustomization's objects as one YAML stream:
// its resources, and the ConfigMaps its configMapGenerator makes from files.
func kustomization(t *testing.T) []byte {
	t.Helper()
	var k struct {
		Resources          []string `yaml:"resources"`
		ConfigMapGenerator []struct {
			Name  string   `yaml:"name"`
			Files []string `yaml:"files"`
		} `yaml:"configMapGenerator"`
	}
	readYAML(t, "kustomization.yaml", &k)
	var stream bytes.Buffer
	for _, f := range k.Resources {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		stream.WriteString("---\n")
		stream.Write(b)
	}
	for _, g := range k.ConfigMapGenerator {
		cm := map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]string{"name": g.Name}}
		data := map[string]string{}
		for _, f := range g.Files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			data[filepath.Base(f)] = string(b)
		}
		cm["data"] = data
		b, err := yaml.Marshal(cm)
		if err != nil {
			t.Fatal(err)
		}
		stream.WriteString("---\n")
		stream.Write(b)
	}
	return stream.Bytes()
}

// chart returns what `helm template` renders of deploy/helm/vmcp as
// release, and the Secret the chart expects to exist: secret.yaml's.
func chart(t *testing.T, release string) []byte {
	t.Helper()
	helm := fixture.Tool(t, "VMCP_HELM", filepath.Join("..", "..", "bin", "helm"), "make helm")
	var stderr bytes.Buffer
	cmd := exec.Command(helm, "template", release, filepath.Join("..", "helm", "vmcp"))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr.Bytes())
	}
	secret, err := os.ReadFile("secret.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return append(append(out, "\n---\n"...), secret...)
}

// objects reads a YAML stream's objects, by kind and name.
func objects(t *testing.T, stream []byte) map[string]*object {
	t.Helper()
	objs := map[string]*object{}
	dec := yaml.NewDecoder(bytes.NewReader(stream))
	for {
		o := &object{}
		if err := dec.Decode(o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if o.Kind == "" {
			continue // an empty document
		}
		key := o.Kind + "/" + o.Metadata.Name
		if objs[key] != nil {
			t.Fatalf("%s twice", key)
		}
		objs[key] = o
	}
	return objs
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func get(t *testing.T, objs map[string]*object, key string) *object {
	t.Helper()
	o := objs[key]
	if o == nil {
		t.Fatalf("no %s", key)
	}
	return o
}

func TestManifests(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		vmcp string // the name of vmcp's Deployment, Service and PodDisruptionBudget
		objs func(t *testing.T) []byte
	}{
		{"kustomization", "vmcp", kustomization},
		// Another release name than the chart's own: nothing may work by
		// coincidence of names.
		{"chart", "gw", func(t *testing.T) []byte { return chart(t, "gw") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkManifests(t, objects(t, tc.objs(t)), tc.vmcp)
		})
	}
}

func checkManifests(t *testing.T, objs map[string]*object, name string) {
	dep := get(t, objs, "Deployment/"+name)
	if r := dep.Spec.Replicas; r == nil || *r != 3 {
		t.Errorf("vmcp replicas = %v, want 3", r)
	}
	pod := dep.Spec.Template
	sel := matchLabels(t, dep.Spec.Selector)
	if !selects(sel, pod.Metadata.Labels) {
		t.Errorf("Deployment selector %v does not select its pods %v", sel, pod.Metadata.Labels)
	}
	if !pod.Spec.SecurityContext.RunAsNonRoot {
		t.Error("pods may run as root")
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if got := strings.Join(c.Args, " "); got != "serve --config /etc/vmcp/config.yaml" {
		t.Errorf("args = %q", got)
	}
	if c.LivenessProbe.HTTPGet.Path != "/health" || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("liveness %q, readiness %q; want /health, /readyz", c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path)
	}
	if !c.SecurityContext.ReadOnlyRootFilesystem {
		t.Error("root filesystem is writable")
	}

	svc := get(t, objs, "Service/"+name)
	if a := svc.Spec.SessionAffinity; a != "" && a != "None" {
		t.Errorf("Service sessionAffinity = %q, want none", a)
	}
	if s := plainSelector(t, svc.Spec.Selector); !selects(s, pod.Metadata.Labels) {
		t.Errorf("Service selector %v does not select vmcp's pods", s)
	}
	pdb := get(t, objs, "PodDisruptionBudget/"+name)
	if s := matchLabels(t, pdb.Spec.Selector); !selects(s, pod.Metadata.Labels) || !selects(pod.Metadata.Labels, s) {
		t.Errorf("PodDisruptionBudget selector %v is not the Deployment's pods' %v", s, pod.Metadata.Labels)
	}
	if m := pdb.Spec.MinAvailable; m == nil || *m < 1 || *m >= *dep.Spec.Replicas {
		t.Errorf("PodDisruptionBudget minAvailable = %v: a drain could never proceed, or could take every replica", m)
	}

	// The config is mounted as a directory, so its updates reach vmcp.
	var cmName string
	for _, v := range pod.Spec.Volumes {
		if v.ConfigMap.Name != "" {
			cmName = v.ConfigMap.Name
			for _, m := range c.VolumeMounts {
				if m.Name == v.Name && (m.MountPath != "/etc/vmcp" || m.SubPath != "") {
					t.Errorf("config mounted at %s subPath %q; want the directory /etc/vmcp", m.MountPath, m.SubPath)
				}
			}
		}
	}
	cm := get(t, objs, "ConfigMap/"+cmName)
	if len(c.EnvFrom) != 1 {
		t.Fatalf("envFrom: %+v", c.EnvFrom)
	}
	secret := get(t, objs, "Secret/"+c.EnvFrom[0].SecretRef.Name)

	// vmcp accepts the ConfigMap's config with the pod's environment (the
	// container's env over the Secret's, as the kubelet has it), and it is
	// what the manifests assume: Redis, a non-loopback listener.
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(cm.Data["config.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(k string) (string, bool) {
		for _, e := range c.Env {
			if e.Name == k {
				return e.Value, true
			}
		}
		v, ok := secret.StringData[k]
		return v, ok
	}
	cfg, err := config.Load(path, config.WithLookupEnv(env))
	if err != nil {
		t.Fatalf("the ConfigMap's config.yaml, with the pod's environment:\n%v", err)
	}
	if cfg.Store.Type != config.StoreRedis {
		t.Errorf("store.type = %q: replicas would not share sessions", cfg.Store.Type)
	}
	if _, ok := objs["Service/"+strings.Split(cfg.Store.Redis.Address, ":")[0]]; !ok {
		t.Errorf("store.redis.address %s names no Service here", cfg.Store.Redis.Address)
	}
	if _, ok := secret.StringData[cfg.Store.Redis.PasswordEnv]; !ok {
		t.Errorf("store.redis.passwordEnv %s is not in the Secret", cfg.Store.Redis.PasswordEnv)
	}
	if !strings.HasSuffix(cfg.Listen, ":4483") || strings.HasPrefix(cfg.Listen, "127.") {
		t.Errorf("listen %s: the probes and the Service reach port 4483 from outside the pod", cfg.Listen)
	}
	if g := cfg.Server.ShutdownGrace.D().Seconds(); g >= float64(pod.Spec.TerminationGracePeriodSeconds) {
		t.Errorf("server.shutdownGrace %vs is not below terminationGracePeriodSeconds %d", g, pod.Spec.TerminationGracePeriodSeconds)
	}
}

// matchLabels reads a label selector {matchLabels: {...}}; anything else
// (matchExpressions) the checks do not understand.
func matchLabels(t *testing.T, n yaml.Node) map[string]string {
	t.Helper()
	var s struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	if err := n.Decode(&s); err != nil || len(s.MatchLabels) == 0 {
		t.Fatalf("selector: want matchLabels only: %v", err)
	}
	return s.MatchLabels
}

// plainSelector reads a Service's selector, a plain label map.
func plainSelector(t *testing.T, n yaml.Node) map[string]string {
	t.Helper()
	var s map[string]string
	if err := n.Decode(&s); err != nil || len(s) == 0 {
		t.Fatalf("Service selector: %v", err)
	}
	return s
}

// selects reports whether every label of sel is in labels.
func selects(sel, labels map[string]string) bool {
	keys := make([]string, 0, len(sel))
	for k := range sel {
		keys = append(keys, k)
	}
	return !slices.ContainsFunc(keys, func(k string) bool { return labels[k] != sel[k] })
}
