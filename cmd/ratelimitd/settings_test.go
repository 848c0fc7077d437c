package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/httplimit"
)

// TestREADMEListsEverySetting keeps the README's settings table and -help in step with
// the table the flags are built from.
func TestREADMEListsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(line, "| `-") {
			name := strings.Trim(strings.Split(line, "|")[1], " `")
			rows[name] = line
		}
	}
	var help bytes.Buffer
	usage(&help)
	for _, s := range table {
		row, ok := rows["-"+s.flag]
		if !ok {
			t.Errorf("README has no row for -%s", s.flag)
			continue
		}
		if !strings.Contains(row, "`"+s.env+"`") {
			t.Errorf("README row of -%s lacks its variable %s", s.flag, s.env)
		}
		if s.def != "" && !strings.Contains(row, "`"+s.def+"`") {
			t.Errorf("README row of -%s lacks its default %s", s.flag, s.def)
		}
		if !strings.Contains(help.String(), "-"+s.flag+"  ("+s.env) {
			t.Errorf("-help lacks -%s", s.flag)
		}
	}
	if len(rows) != len(table)+2 { // + -check, -version
		t.Errorf("README lists %d flags, the service has %d", len(rows), len(table)+2)
	}
}

// TestREADMECurl sends the README's example request to the service on its built-in rules.
func TestREADMECurl(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "curl -s localhost:8080/v1/check -d '")
	body, _, ok2 := strings.Cut(rest, "'")
	if !ok || !ok2 {
		t.Fatal("the README has no curl example of /v1/check")
	}
	s := start(t, nil)
	resp, err := http.Post("http://"+s.http+"/v1/check", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(out), `"allowed":true`) || !strings.Contains(string(out), `"id":"example.user"`) {
		t.Errorf("the README's request: %d %s, want allowed by example.user", resp.StatusCode, out)
	}
}

// The words -fail and -headers take are the library's: each value the help names parses
// to a policy or style whose String is that word again.
func TestFlagValuesRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		flag  string
		words []string
		parse func(string) (fmt.Stringer, error)
	}{
		{"fail", []string{"local", "open", "closed", "error"}, func(s string) (fmt.Stringer, error) { return ratelimit.ParseFailPolicy(s) }},
		{"headers", []string{"none", "draft03", "ietf", "legacy", "both"}, func(s string) (fmt.Stringer, error) { return httplimit.ParseHeaderStyle(s) }},
	} {
		var help string
		for _, s := range table {
			if s.flag == tc.flag {
				help = s.def + " " + s.usage
			}
		}
		for _, w := range tc.words {
			v, err := tc.parse(w)
			if err != nil || v.String() != w {
				t.Errorf("-%s %s: parses to %v (String %q), %v; want String %q", tc.flag, w, v, v, err, w)
			}
			if !strings.Contains(help, w) {
				t.Errorf("-%s: help %q does not name %q", tc.flag, help, w)
			}
		}
	}
	// The service's default settings parse.
	var s settings
	for _, st := range table {
		if st.flag == "headers" {
			s.headers = st.def
		}
	}
	if h, err := httplimit.ParseHeaderStyle(s.headers); err != nil || h != httplimit.HeadersNone {
		t.Errorf("default -headers %q: %v, %v; want none", s.headers, h, err)
	}
}

// TestHelp: -help prints the flags on stdout, so that a pager shows them, and nothing on
// stderr; run returns flag.ErrHelp, on which main exits 0.
func TestHelp(t *testing.T) {
	for _, arg := range []string{"-help", "-h"} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), []string{arg}, func(string) string { return "" }, &stdout, &stderr)
		if !errors.Is(err, flag.ErrHelp) || !strings.HasPrefix(stdout.String(), "Usage: ratelimitd") || stderr.Len() != 0 {
			t.Errorf("run %s = %v, stdout %.40q, stderr %q; want flag.ErrHelp, the usage on stdout, nothing on stderr", arg, err, stdout.String(), stderr.String())
		}
	}
}

// TestREADMECheck runs the README's -check command on the file it names, from the
// repository's root as the README runs it.
func TestREADMECheck(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "bin/ratelimitd -check -config ")
	path, _, _ := strings.Cut(rest, " ")
	if !ok || path == "" {
		t.Fatal("the README has no -check command")
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"-check", "-config", "../../" + path}, func(string) string { return "" }, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "ok:") {
		t.Errorf("ratelimitd -check -config %s = %v, %q; want ok", path, err, out.String())
	}
}
