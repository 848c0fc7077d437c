package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	ratelimitfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/engine"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
	"github.com/go-ratelimit/ratelimit/memorystore"
)

// yamlDocs decodes every document of a YAML file into generic values.
func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var docs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var d map[string]any
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			return docs
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		docs = append(docs, d)
	}
}

// dig follows keys (strings for maps, ints for lists) into v.
func dig(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %q: not a map in %v", k, path)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("at [%d]: not a list long enough in %v", k, path)
			}
			v = l[k]
		}
	}
	return v
}

// TestEnvoyBootstrap checks the Envoy example against Envoy's own protos: it decodes as a
// Bootstrap with protojson, unknown fields refused, passes the protos' validation, points
// its rate limit filter at the ratelimitd cluster on the gRPC port, and asks the domain
// the Kubernetes ConfigMap defines, whose rules match every descriptor Envoy sends.
func TestEnvoyBootstrap(t *testing.T) {
	docs := yamlDocs(t, "../../deploy/envoy/envoy.yaml")
	if len(docs) != 1 {
		t.Fatalf("%d documents, want 1", len(docs))
	}
	js, err := json.Marshal(docs[0])
	if err != nil {
		t.Fatal(err)
	}
	var bs bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &bs); err != nil {
		t.Fatalf("not a Bootstrap: %v", err)
	}
	if err := bs.ValidateAll(); err != nil {
		t.Fatalf("invalid Bootstrap: %v", err)
	}
	var mgr hcm.HttpConnectionManager
	filter := bs.StaticResources.Listeners[0].FilterChains[0].Filters[0]
	if err := filter.GetTypedConfig().UnmarshalTo(&mgr); err != nil {
		t.Fatal(err)
	}
	var rl ratelimitfilter.RateLimit
	if err := mgr.HttpFilters[0].GetTypedConfig().UnmarshalTo(&rl); err != nil {
		t.Fatal(err)
	}
	cluster := rl.RateLimitService.GrpcService.GetEnvoyGrpc().ClusterName
	var port uint32
	for _, c := range bs.StaticResources.Clusters {
		if c.Name == cluster {
			port = c.LoadAssignment.Endpoints[0].LbEndpoints[0].GetEndpoint().Address.GetSocketAddress().GetPortValue()
			if c.TypedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"] == nil {
				t.Errorf("cluster %s does not speak HTTP/2, which gRPC needs", cluster)
			}
		}
	}
	if port != 8081 {
		t.Errorf("the rate limit service is cluster %q on port %d, want ratelimitd's gRPC port 8081", cluster, port)
	}

	// The descriptors the route's actions make, decided on the ConfigMap's rules.
	set := configMapRules(t)
	if !set.Has(rl.Domain) {
		t.Fatalf("Envoy asks domain %q, which the ConfigMap's rules do not define", rl.Domain)
	}
	var descs []engine.Descriptor
	for _, action := range mgr.GetRouteConfig().VirtualHosts[0].Routes[0].GetRoute().RateLimits {
		a := action.Actions[0]
		switch {
		case a.GetRemoteAddress() != nil:
			descs = append(descs, engine.Descriptor{Entries: []rules.Entry{{Key: "remote_address", Value: "192.0.2.1"}}})
		case a.GetRequestHeaders() != nil:
			descs = append(descs, engine.Descriptor{Entries: []rules.Entry{{Key: a.GetRequestHeaders().DescriptorKey, Value: "alice"}}})
		default:
			t.Fatalf("action %v: the test knows remote_address and request_headers only", a)
		}
	}
	store := memorystore.New(nil)
	defer store.Close()
	resp, err := engine.New(store, set, nil).Decide(t.Context(), &engine.Request{Domain: rl.Domain, Descriptors: descs})
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range resp.Statuses {
		if st.Unmatched || st.Rule == nil {
			t.Errorf("descriptor %v: no rule of the ConfigMap matched it", descs[i].Entries)
		}
	}
}

// configMapRules compiles the rule files of the Kubernetes ConfigMap.
func configMapRules(t *testing.T) *rules.Set {
	t.Helper()
	var srcs []rules.Source
	for _, d := range yamlDocs(t, "../../deploy/kubernetes/ratelimitd.yaml") {
		if d["kind"] != "ConfigMap" {
			continue
		}
		for name, data := range dig(t, d, "data").(map[string]any) {
			srcs = append(srcs, rules.Source{Name: name, Data: []byte(data.(string))})
		}
	}
	set, err := rules.Compile(srcs)
	if err != nil {
		t.Fatalf("the ConfigMap's rules: %v", err)
	}
	return set
}

// TestKubernetesManifests checks the manifests' shape: a ConfigMap of rules that compile,
// mounted where RATELIMITD_CONFIG points; a Deployment whose readiness probe asks /readyz
// and liveness /healthz on the HTTP port, running as a non-root user, whose variables are
// all settings of the service; and a Service exposing the container's gRPC and HTTP ports
// to the pods the Deployment labels.
func TestKubernetesManifests(t *testing.T) {
	kinds := map[string]map[string]any{}
	for _, d := range yamlDocs(t, "../../deploy/kubernetes/ratelimitd.yaml") {
		kinds[d["kind"].(string)] = d
	}
	for _, k := range []string{"ConfigMap", "Deployment", "Service"} {
		if kinds[k] == nil {
			t.Fatalf("no %s", k)
		}
	}
	configMapRules(t)
	dep, svc := kinds["Deployment"], kinds["Service"]
	pod := dig(t, dep, "spec", "template", "spec")
	c := dig(t, pod, "containers", 0).(map[string]any)
	env := map[string]string{}
	for _, e := range c["env"].([]any) {
		e := e.(map[string]any)
		env[e["name"].(string)] = e["value"].(string)
	}
	known := map[string]bool{}
	for _, s := range table {
		known[s.env] = true
	}
	for name := range env {
		if !known[name] {
			t.Errorf("variable %s is no setting of the service", name)
		}
	}
	ports := map[string]int{}
	for _, p := range c["ports"].([]any) {
		p := p.(map[string]any)
		ports[p["name"].(string)] = p["containerPort"].(int)
	}
	if ports["grpc"] != 8081 || ports["http"] != 8080 {
		t.Errorf("container ports %v, want grpc 8081 and http 8080, the service's defaults", ports)
	}
	for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
		if got := dig(t, c, probe, "httpGet", "path"); got != path || dig(t, c, probe, "httpGet", "port") != "http" {
			t.Errorf("%s asks %v on %v, want %s on the http port", probe, got, dig(t, c, probe, "httpGet", "port"), path)
		}
	}
	if dig(t, pod, "securityContext", "runAsNonRoot") != true {
		t.Error("the pod may run as root")
	}
	mount := dig(t, c, "volumeMounts", 0).(map[string]any)
	vol := dig(t, pod, "volumes", 0).(map[string]any)
	if mount["mountPath"] != env["RATELIMITD_CONFIG"] || mount["name"] != vol["name"] ||
		dig(t, vol, "configMap", "name") != dig(t, kinds["ConfigMap"], "metadata", "name") {
		t.Errorf("the rules are not mounted from the ConfigMap where RATELIMITD_CONFIG (%s) points", env["RATELIMITD_CONFIG"])
	}
	labels := dig(t, dep, "spec", "template", "metadata", "labels").(map[string]any)
	for k, v := range dig(t, svc, "spec", "selector").(map[string]any) {
		if labels[k] != v {
			t.Errorf("the Service selects %s=%v, which the pods do not carry", k, v)
		}
	}
	var targets []string
	for _, p := range dig(t, svc, "spec", "ports").([]any) {
		targets = append(targets, dig(t, p, "targetPort").(string))
	}
	if strings.Join(targets, ",") != "grpc,http" {
		t.Errorf("the Service targets %v, want the grpc and http ports", targets)
	}
}
