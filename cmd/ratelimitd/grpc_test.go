package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
)

// TestReflectionListsTheServices: grpcurl and similar tools can discover the API.
func TestReflectionListsTheServices(t *testing.T) {
	s := start(t, nil)
	stream, err := reflectionpb.NewServerReflectionClient(s.conn).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: "*"},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	stream.CloseSend()
	var names []string
	for _, svc := range resp.GetListServicesResponse().GetService() {
		names = append(names, svc.GetName())
	}
	for _, want := range []string{"envoy.service.ratelimit.v3.RateLimitService", "grpc.health.v1.Health"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, without %s", names, want)
		}
	}
}

// TestExposedAdminNeedsItsToken: an admin listener on a non-loopback address starts only
// with a token, and then refuses calls without it.
func TestExposedAdminNeedsItsToken(t *testing.T) {
	s := start(t, map[string]string{"RATELIMITD_ADMIN_TOKEN": "s3cret"}, "-admin", "0.0.0.0:0")
	addr := "127.0.0.1:" + s.admin[strings.LastIndex(s.admin, ":")+1:]
	for _, tc := range []struct {
		auth string
		want int
	}{{"", http.StatusUnauthorized}, {"Bearer wrong", http.StatusUnauthorized}, {"Bearer s3cret", http.StatusOK}} {
		req, err := http.NewRequest("GET", "http://"+addr+"/v1/rules", nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET /v1/rules with Authorization %q: %d, want %d", tc.auth, resp.StatusCode, tc.want)
		}
	}
}
