package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
)

// manifests are the Kubernetes objects of deploy/kubernetes, by kind.
type manifests struct {
	namespaces   []*corev1.Namespace
	secrets      map[string]*corev1.Secret
	services     map[string]*corev1.Service
	statefulSets []*appsv1.StatefulSet
	daemonSets   []*appsv1.DaemonSet
}

// decodeManifests decodes every document of every YAML file under dir
// strictly (unknown or repeated fields are errors) as core/v1 and apps/v1
// objects.
func decodeManifests(t *testing.T, dir string) manifests {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := appsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	decoder := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s (%v)", dir, err)
	}
	m := manifests{secrets: map[string]*corev1.Secret{}, services: map[string]*corev1.Service{}}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for n := 1; ; n++ {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: document %d: %v", file, n, err)
			}
			if isBlank(doc) {
				continue
			}
			obj, gvk, err := decoder.Decode(doc, nil, nil)
			if err != nil {
				t.Errorf("%s: document %d: %v", file, n, err)
				continue
			}
			where := filepath.Base(file) + ": " + gvk.Kind
			switch o := obj.(type) {
			case *corev1.Namespace:
				m.namespaces = append(m.namespaces, o)
				continue
			case *corev1.Secret:
				m.secrets[o.Name] = o
			case *corev1.Service:
				m.services[o.Name] = o
			case *appsv1.StatefulSet:
				m.statefulSets = append(m.statefulSets, o)
			case *appsv1.DaemonSet:
				m.daemonSets = append(m.daemonSets, o)
			default:
				t.Errorf("%s: unexpected kind", where)
				continue
			}
			if ns := obj.(interface{ GetNamespace() string }).GetNamespace(); ns != "lakehouse" {
				t.Errorf("%s: namespace %q, want lakehouse", where, ns)
			}
		}
	}
	return m
}

// isBlank reports whether a YAML document holds only comments.
func isBlank(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") && l != "---" {
			return false
		}
	}
	return true
}

func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	m := decodeManifests(t, "kubernetes")
	if len(m.namespaces) != 1 || m.namespaces[0].Name != "lakehouse" {
		t.Errorf("want one Namespace lakehouse, have %d", len(m.namespaces))
	}
	if len(m.statefulSets) != 1 || len(m.daemonSets) != 1 {
		t.Fatalf("want one StatefulSet (control) and one DaemonSet (workers), have %d and %d", len(m.statefulSets), len(m.daemonSets))
	}

	control := m.statefulSets[0]
	if r := control.Spec.Replicas; r == nil || *r != 1 {
		t.Errorf("the control plane StatefulSet must have one replica: it holds the catalog alone")
	}
	if gov := m.services[control.Spec.ServiceName]; gov == nil || gov.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("StatefulSet serviceName %q is not a headless Service of the manifests", control.Spec.ServiceName)
	}
	if len(control.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("the control plane needs a volume claim for its data dir")
	}
	claim := control.Spec.VolumeClaimTemplates[0].Name
	checkPod(t, m, "StatefulSet "+control.Name, control.Spec.Selector.MatchLabels, &control.Spec.Template, []string{claim}, "control")
	if svc := m.services["lakehouse-control"]; svc == nil || !selects(svc.Spec.Selector, control.Spec.Template.Labels) {
		t.Errorf("no Service lakehouse-control selecting the control plane's pods")
	} else {
		checkServicePorts(t, svc, &control.Spec.Template.Spec)
	}

	workers := m.daemonSets[0]
	checkPod(t, m, "DaemonSet "+workers.Name, workers.Spec.Selector.MatchLabels, &workers.Spec.Template, nil, "worker")
	var shm bool
	for _, c := range workers.Spec.Template.Spec.Containers {
		for _, vm := range c.VolumeMounts {
			shm = shm || vm.MountPath == "/dev/shm"
		}
	}
	if !shm {
		t.Errorf("workers hand outputs over in /dev/shm: mount a Memory emptyDir there (the default is 64 MiB)")
	}
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// checkPod checks a pod template: its labels match the selector, its
// volumes, Secrets, Secret keys, ports and $(VAR) references are all
// defined, and its lakehouse container serves role with known flags.
func checkPod(t *testing.T, m manifests, where string, selector map[string]string, tmpl *corev1.PodTemplateSpec, claims []string, role string) {
	t.Helper()
	if !selects(selector, tmpl.Labels) {
		t.Errorf("%s: selector %v does not match the template's labels %v", where, selector, tmpl.Labels)
	}
	spec := &tmpl.Spec
	volumes := slices.Clone(claims)
	for _, v := range spec.Volumes {
		volumes = append(volumes, v.Name)
		if v.Secret != nil {
			s := m.secrets[v.Secret.SecretName]
			if s == nil {
				t.Errorf("%s: volume %s uses Secret %s, not in the manifests", where, v.Name, v.Secret.SecretName)
				continue
			}
			for _, item := range v.Secret.Items {
				if !secretHas(s, item.Key) {
					t.Errorf("%s: volume %s uses key %s, not in Secret %s", where, v.Name, item.Key, s.Name)
				}
			}
		}
	}
	if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: pods must run as non-root", where)
	}
	served := false
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		cw := where + " container " + c.Name
		for _, vm := range c.VolumeMounts {
			if !slices.Contains(volumes, vm.Name) {
				t.Errorf("%s: mounts volume %s, which the pod does not define", cw, vm.Name)
			}
		}
		env := map[string]bool{}
		for _, e := range c.Env {
			env[e.Name] = true
			if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
				s := m.secrets[ref.SecretKeyRef.Name]
				if s == nil {
					t.Errorf("%s: env %s uses Secret %s, not in the manifests", cw, e.Name, ref.SecretKeyRef.Name)
				} else if !secretHas(s, ref.SecretKeyRef.Key) {
					t.Errorf("%s: env %s uses key %s, not in Secret %s", cw, e.Name, ref.SecretKeyRef.Key, s.Name)
				}
			}
		}
		for _, from := range c.EnvFrom {
			if from.SecretRef != nil && m.secrets[from.SecretRef.Name] == nil {
				t.Errorf("%s: envFrom Secret %s, not in the manifests", cw, from.SecretRef.Name)
			}
		}
		for _, arg := range append(slices.Clone(c.Command), c.Args...) {
			for _, ref := range varRef.FindAllStringSubmatch(arg, -1) {
				if !env[ref[1]] {
					t.Errorf("%s: %s is not an env var of the container", cw, ref[0])
				}
			}
		}
		for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
			if p != nil && p.HTTPGet != nil && !hasPort(c.Ports, p.HTTPGet.Port) {
				t.Errorf("%s: probe on port %s, which the container does not name", cw, p.HTTPGet.Port.String())
			}
		}
		if !slices.Contains(c.Args, "serve") {
			continue
		}
		served = true
		if len(c.Command) == 0 || filepath.Base(c.Command[len(c.Command)-1]) != "lakehouse" {
			t.Errorf("%s: the command must end with the lakehouse binary, have %q", cw, c.Command)
		}
		a := checkServeArgs(t, cw, c.Args)
		if a.serve["role"] != role {
			t.Errorf("%s: --role=%s, want %s", cw, a.serve["role"], role)
		}
	}
	if !served {
		t.Errorf("%s: no container runs lakehouse serve", where)
	}
}

func secretHas(s *corev1.Secret, key string) bool {
	_, inString := s.StringData[key]
	_, inData := s.Data[key]
	return inString || inData
}

// varRef is a Kubernetes $(VAR) reference in a command or argument.
var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

func hasPort(ports []corev1.ContainerPort, p intstr.IntOrString) bool {
	return slices.ContainsFunc(ports, func(cp corev1.ContainerPort) bool {
		return p.Type == intstr.String && cp.Name == p.StrVal || p.Type == intstr.Int && cp.ContainerPort == p.IntVal
	})
}

func checkServicePorts(t *testing.T, svc *corev1.Service, pod *corev1.PodSpec) {
	t.Helper()
	for _, sp := range svc.Spec.Ports {
		if !slices.ContainsFunc(pod.Containers, func(c corev1.Container) bool { return hasPort(c.Ports, sp.TargetPort) }) {
			t.Errorf("Service %s: port %s targets %s, which no container names", svc.Name, sp.Name, sp.TargetPort.String())
		}
	}
}

// TestManifestsStrict shows the decoding is strict: a misspelt field fails.
func TestManifestsStrict(t *testing.T) {
	t.Parallel()
	bad := "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  namespace: lakehouse\nspec:\n  selectr: {a: b}\n"
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	_, _, err := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer().Decode([]byte(bad), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "selectr") {
		t.Fatalf("a misspelt field decoded: %v", err)
	}
}
