package ssmexec_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berth-dev/berth/internal/aws/awstest"
	"github.com/berth-dev/berth/internal/aws/ssmexec"
)

const (
	cluster = "arn:aws:ecs:eu-west-1:123456789012:cluster/berth-prod"
	task    = "arn:aws:ecs:eu-west-1:123456789012:task/berth-prod/0123456789abcdef"
)

// setup is the real ECS client, through the test proxy, whose
// ExecuteCommand the fake agent answers. Nothing reaches moto: the proxy's
// moto address is a closed port.
func setup(t *testing.T) (*ecs.Client, *awstest.SSMAgent, *awstest.Proxy) {
	t.Helper()
	p := awstest.StartProxy(t, "http://127.0.0.1:1", "")
	agent := awstest.StartSSMAgent(t)
	p.Handle("ecs:ExecuteCommand", agent.ExecuteCommand)
	cfg := aws.Config{Region: awstest.Region, Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")}
	return ecs.NewFromConfig(cfg, func(o *ecs.Options) { o.BaseEndpoint = aws.String(p.URL) }), agent, p
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestExecStdinToOutput(t *testing.T) {
	api, agent, _ := setup(t)
	var out bytes.Buffer
	code, err := ssmexec.Exec(ctxT(t), api, cluster, task, "web", []string{"tr", "a-z", "A-Z"},
		strings.NewReader("hello\nworld"), &out, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || out.String() != "HELLO\nWORLD" {
		t.Errorf("exit %d, output %q", code, out.String())
	}
	s := agent.Sessions()[0]
	if s.Cluster != cluster || s.Task != task || s.Container != "web" || !strings.HasPrefix(s.Command, "sh -c 'stty -echo -onlcr ") {
		t.Errorf("ExecuteCommand got %+v", s)
	}
	// The end of a partial line is ^D twice, as on a terminal.
	if got := string(s.Input()); got != "hello\nworld\x04\x04" {
		t.Errorf("agent got input %q", got)
	}
}

func TestExecExitCode(t *testing.T) {
	api, _, _ := setup(t)
	for _, tc := range []struct {
		argv []string
		code int
		out  string
	}{
		{[]string{"sh", "-c", "echo 'it''s out'; echo err >&2; exit 3"}, 3, "its out\nerr\n"},
		{[]string{"true"}, 0, ""},
		{[]string{"printf", "%s", "no newline"}, 0, "no newline"},
		{[]string{"/nonexistent/cmd"}, 127, ""},
	} {
		var out bytes.Buffer
		code, err := ssmexec.Exec(ctxT(t), api, cluster, task, "web", tc.argv, nil, &out, false, nil)
		if err != nil {
			t.Fatalf("%v: %v", tc.argv, err)
		}
		got := out.String()
		if tc.code == 127 {
			got = "" // sh's own message, worded by the shell
		}
		if code != tc.code || got != tc.out {
			t.Errorf("%v: exit %d, output %q; want %d, %q", tc.argv, code, out.String(), tc.code, tc.out)
		}
	}
}

// TestNoShell: without the wrapper the exit code is unknown, and said so.
func TestNoShell(t *testing.T) {
	api, agent, _ := setup(t)
	var out bytes.Buffer
	res, err := ssmexec.Start(ctxT(t), api, ssmexec.Request{Cluster: cluster, Task: task, Container: "web",
		Command: []string{"sh", "-c", "echo hi; exit 5"}, NoShell: true, Stream: ssmexec.Stream{Stdout: &out}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Known || res.Code != 0 || out.String() != "hi\n" {
		t.Errorf("result %+v, output %q", res, out.String())
	}
	if got := agent.Sessions()[0].Command; got != `sh -c 'echo hi; exit 5'` {
		t.Errorf("command sent %q", got)
	}
}

// TestResend: input the agent does not acknowledge is sent again, and the
// command reads it once.
func TestResend(t *testing.T) {
	api, agent, _ := setup(t)
	agent.DropAcks = 3
	var out bytes.Buffer
	pr, pw := io.Pipe()
	go func() {
		for _, l := range []string{"one\n", "two\n", "three\n"} {
			_, _ = pw.Write([]byte(l))
			time.Sleep(20 * time.Millisecond)
		}
		pw.Close()
	}()
	code, err := ssmexec.Exec(ctxT(t), api, cluster, task, "web", []string{"cat"}, pr, &out, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || out.String() != "one\ntwo\nthree\n" {
		t.Errorf("exit %d, output %q", code, out.String())
	}
	s := agent.Sessions()[0]
	if string(s.Input()) != "one\ntwo\nthree\n\x04" {
		t.Errorf("agent got input %q", s.Input())
	}
}

// TestOutputOutOfOrder: output messages that arrive out of order are
// written in sequence order.
func TestOutputOutOfOrder(t *testing.T) {
	api, agent, _ := setup(t)
	agent.Reorder = true
	var out bytes.Buffer
	script := `for i in 1 2 3 4 5 6 7; do echo line$i; sleep 0.02; done`
	code, err := ssmexec.Exec(ctxT(t), api, cluster, task, "web", []string{"sh", "-c", script}, nil, &out, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "line1\nline2\nline3\nline4\nline5\nline6\nline7\n"; code != 0 || out.String() != want {
		t.Errorf("exit %d, output %q", code, out.String())
	}
}

func TestResize(t *testing.T) {
	api, agent, _ := setup(t)
	pr, pw := io.Pipe()
	sizes := make(chan ssmexec.Size, 2)
	sizes <- ssmexec.Size{Cols: 80, Rows: 24}
	sizes <- ssmexec.Size{Cols: 132, Rows: 43}
	done := make(chan error, 1)
	go func() {
		_, err := ssmexec.Exec(ctxT(t), api, cluster, task, "web", []string{"cat"}, pr, io.Discard, true, sizes)
		done <- err
	}()
	waitFor(t, "two sizes", func() bool { s := agent.Sessions(); return len(s) == 1 && len(s[0].Sizes()) == 2 })
	got := agent.Sessions()[0].Sizes()
	if got[0] != (awstest.SSMSize{Cols: 80, Rows: 24}) || got[1] != (awstest.SSMSize{Cols: 132, Rows: 43}) {
		t.Errorf("agent got sizes %+v", got)
	}
	if strings.Contains(agent.Sessions()[0].Command, "stty") {
		t.Errorf("a terminal session's command changes the terminal: %s", agent.Sessions()[0].Command)
	}
	_, _ = pw.Write([]byte{4}) // ^D, typed
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestCancel: a cancelled context ends Exec at once, and the agent is asked
// to terminate the session.
func TestCancel(t *testing.T) {
	api, agent, _ := setup(t)
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error, 1)
	go func() {
		_, err := ssmexec.Exec(ctx, api, cluster, task, "web", []string{"sleep", "30"}, nil, io.Discard, false, nil)
		done <- err
	}()
	waitFor(t, "the session", func() bool { s := agent.Sessions(); return len(s) == 1 && s[0].Opened() })
	time.Sleep(100 * time.Millisecond) // the handshake
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Exec returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Exec did not return after cancel")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Exec took %s to return", d)
	}
	waitFor(t, "the agent to end the command", func() bool { return agent.Sessions()[0].Done() })
	if !agent.Sessions()[0].Terminated() {
		t.Error("the agent was not asked to terminate the session")
	}
}

func TestEncryptedSessionRefused(t *testing.T) {
	api, agent, _ := setup(t)
	agent.KMS = true
	_, err := ssmexec.Exec(ctxT(t), api, cluster, task, "web", []string{"true"}, nil, io.Discard, false, nil)
	if !errors.Is(err, ssmexec.ErrEncryption) {
		t.Errorf("got %v, want ErrEncryption", err)
	}
}

func TestExecuteCommandRefused(t *testing.T) {
	api, _, p := setup(t)
	p.Handle("ecs:ExecuteCommand", awstest.Fail(400, "InvalidParameterException",
		"The execute command failed because execute command was not enabled when the task was run or the execute command agent isn’t running."))
	_, err := ssmexec.Exec(ctxT(t), api, cluster, task, "web", []string{"true"}, nil, io.Discard, false, nil)
	if err == nil || !strings.Contains(err.Error(), "redeploy the service") {
		t.Errorf("got %v", err)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
