package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tollgate-dev/tollgate/test/proc"
)

// controlPlaneNames are the base names of the binaries a cluster runs as
// children of the test binary.
var controlPlaneNames = []string{apiServerBinary, etcdBinary, controllerManagerBinary}

func TestValidate(t *testing.T) {
	full := fakeBinDir(t, map[string]string{
		apiServerBinary: "", etcdBinary: "", kubectlBinary: "", controllerManagerBinary: "",
	})
	noKCM := fakeBinDir(t, map[string]string{apiServerBinary: "", etcdBinary: "", kubectlBinary: ""})
	notExec := fakeBinDir(t, map[string]string{apiServerBinary: "", kubectlBinary: ""})
	if err := os.WriteFile(filepath.Join(notExec, etcdBinary), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	crdFile := filepath.Join(t.TempDir(), "crd.yaml")
	if err := os.WriteFile(crdFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		opts Options
		want []string // substrings of the error; none means no error
	}{
		{
			name: "missing BinDir",
			opts: Options{BinDir: filepath.Join(t.TempDir(), "no-such-dir")},
			want: []string{"make tools", "kube-apiserver, etcd, kubectl", "no-such-dir", BinDirEnv},
		},
		{
			name: "all binaries",
			opts: Options{BinDir: full, ControllerManager: true, CRDDirs: []string{t.TempDir()}},
		},
		{
			name: "no controller manager needed",
			opts: Options{BinDir: noKCM},
		},
		{
			name: "controller manager missing",
			opts: Options{BinDir: noKCM, ControllerManager: true},
			want: []string{"make tools", "lacks kube-controller-manager"},
		},
		{
			name: "binary not executable",
			opts: Options{BinDir: notExec},
			want: []string{"make tools", "lacks etcd"},
		},
		{
			name: "CRD directory missing",
			opts: Options{BinDir: full, CRDDirs: []string{t.TempDir(), "/no/such/crds"}},
			want: []string{"CRDDirs[1]", "/no/such/crds"},
		},
		{
			name: "CRD path is a file",
			opts: Options{BinDir: full, CRDDirs: []string{crdFile}},
			want: []string{"CRDDirs[0]", "not a directory"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error mentioning %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to mention %q", err, w)
				}
			}
		})
	}
}

func TestDefaultBinDir(t *testing.T) {
	t.Run("from the environment", func(t *testing.T) {
		t.Setenv(BinDirEnv, "/opt/k8s/bin")
		o, err := Options{}.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		if o.BinDir != "/opt/k8s/bin" {
			t.Errorf("BinDir = %q, want $%s", o.BinDir, BinDirEnv)
		}
	})
	t.Run("repository root, skipping test/tools", func(t *testing.T) {
		t.Setenv(BinDirEnv, "")
		root := t.TempDir()
		writeFile(t, filepath.Join(root, "go.mod"), "// Tollgate\nmodule   "+rootModule+" // the repo\n\ngo 1.26.0\n")
		writeFile(t, filepath.Join(root, "test", "tools", "go.mod"), "module "+rootModule+"/test/tools\n")
		wd := filepath.Join(root, "test", "tools", "sub")
		if err := os.MkdirAll(wd, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Chdir(wd)
		o, err := Options{}.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(root, "bin", "k8s"); o.BinDir != want {
			t.Errorf("BinDir = %q, want %q", o.BinDir, want)
		}
	})
	t.Run("no repository", func(t *testing.T) {
		t.Setenv(BinDirEnv, "")
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "go.mod"), "module example.com/other\n")
		t.Chdir(dir)
		_, err := Options{}.withDefaults()
		if err == nil || !strings.Contains(err.Error(), BinDirEnv) {
			t.Fatalf("withDefaults() error = %v, want one naming %s", err, BinDirEnv)
		}
	})
}

func TestCommandEnv(t *testing.T) {
	got := commandEnv([]string{"HOME=/home/me", "KUBECONFIG=/home/me/.kube/prod", "KUBECACHEDIR=/x", "PATH=/bin"}, "/tmp/c/cache")
	want := []string{"HOME=/home/me", "PATH=/bin", "KUBECACHEDIR=/tmp/c/cache"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("commandEnv() mismatch (-want +got):\n%s", diff)
	}
}

func TestOutput(t *testing.T) {
	var log bytes.Buffer
	o := newOutput("etcd", &syncWriter{w: &log})
	for _, chunk := range []string{"first li", "ne\nsecond line\nthi", "rd"} {
		if n, err := o.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	if diff := cmp.Diff("etcd: first line\netcd: second line\n", log.String()); diff != "" {
		t.Errorf("log mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff("first line\nsecond line\nthird", o.lastLines()); diff != "" {
		t.Errorf("lastLines() mismatch (-want +got):\n%s", diff)
	}

	for i := range 100 {
		fmt.Fprintf(o, "line %d\n", i)
	}
	tail := strings.Split(o.lastLines(), "\n")
	if len(tail) != tailLines || tail[0] != "line 75" || tail[len(tail)-1] != "line 99" {
		t.Errorf("lastLines() = %q, want line 75 to line 99", tail)
	}
	err := o.annotate(errors.New("boom"))
	if !strings.HasPrefix(err.Error(), "boom\nlast output of etcd:\n\tline 75\n") || !strings.HasSuffix(err.Error(), "\tline 99") {
		t.Errorf("annotate() = %q", err)
	}
}

// TestCluster starts a full cluster and uses it the way the end-to-end
// tests do.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var log proc.Buffer
	kubeconfig := filepath.Join(t.TempDir(), "new-dir", "kubeconfig")
	begin := time.Now()
	c, err := Start(ctx, Options{
		ControllerManager: true,
		CRDDirs:           []string{crdDir(t)},
		KubeconfigPath:    kubeconfig,
		Log:               &log,
	})
	if err != nil {
		t.Fatalf("Start() = %v", err)
	}
	t.Logf("Start took %s", time.Since(begin).Round(time.Millisecond))
	defer func() {
		if err := c.Stop(); err != nil {
			t.Errorf("Stop() = %v", err)
		}
		if t.Failed() {
			t.Logf("control-plane output:\n%s", log.String())
		}
	}()
	cs, err := kubernetes.NewForConfig(c.Config())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("loopback only", func(t *testing.T) {
		u, err := url.Parse(c.Server())
		if err != nil {
			t.Fatal(err)
		}
		if u.Scheme != "https" || u.Hostname() != "127.0.0.1" {
			t.Errorf("Server() = %q, want https://127.0.0.1:<port>", c.Server())
		}
		if runtime.GOOS != "linux" {
			t.Skip("reads /proc")
		}
		listening := listeningAddrs(t, childProcesses(t))
		for _, name := range []string{apiServerBinary, etcdBinary} {
			if len(listening[name]) == 0 {
				t.Errorf("%s listens on no TCP port", name)
			}
		}
		for name, addrs := range listening {
			for _, a := range addrs {
				if !strings.HasPrefix(a, "127.0.0.1:") && !strings.HasPrefix(a, "[::1]:") {
					t.Errorf("%s listens on %s, want loopback only", name, a)
				}
			}
		}
		if addrs := listening[controllerManagerBinary]; len(addrs) > 0 {
			t.Errorf("kube-controller-manager listens on %v, want no port", addrs)
		}
	})

	t.Run("kubeconfig", func(t *testing.T) {
		if c.KubeconfigPath() != kubeconfig {
			t.Errorf("KubeconfigPath() = %q, want %q", c.KubeconfigPath(), kubeconfig)
		}
		fi, err := os.Stat(c.KubeconfigPath())
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("kubeconfig mode = %o, want 600", perm)
		}
		kc, err := clientcmd.LoadFromFile(c.KubeconfigPath())
		if err != nil {
			t.Fatal(err)
		}
		if got := kc.Clusters[kc.Contexts[kc.CurrentContext].Cluster].Server; got != c.Server() {
			t.Errorf("kubeconfig server = %q, want %q", got, c.Server())
		}
		stdout, _, err := c.Kubectl(ctx, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.groups}")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(stdout, AdminUser+" ") || !strings.Contains(stdout, "system:masters") {
			t.Errorf("kubectl auth whoami = %q, want %s in system:masters", stdout, AdminUser)
		}
	})

	t.Run("kubectl version", func(t *testing.T) {
		stdout, stderr, err := c.Kubectl(ctx, "version")
		if err != nil && strings.Contains(stderr, "v0.0.0-") {
			t.Fatalf("%v\nThe binaries in %s carry no version: build them with -ldflags setting gitVersion, gitMajor and gitMinor in k8s.io/component-base/version and k8s.io/client-go/pkg/version (see `make tools`)", err, c.opts.BinDir)
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stdout, "Server Version:") {
			t.Errorf("kubectl version printed no server version:\n%s", stdout)
		}
	})

	t.Run("kubectl error", func(t *testing.T) {
		_, stderr, err := c.Kubectl(ctx, "get", "nosuchkinds")
		if err == nil {
			t.Fatal("kubectl get nosuchkinds succeeded")
		}
		if !strings.Contains(stderr, "nosuchkinds") || !strings.Contains(err.Error(), "nosuchkinds") {
			t.Errorf("stderr = %q, err = %q; want both to name the resource", stderr, err)
		}
	})

	t.Run("CRDs", func(t *testing.T) {
		stdout, _, err := c.Kubectl(ctx, "api-resources", "--api-group=tollgate.dev", "-o", "name")
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Fields(stdout)
		slices.Sort(got)
		want := []string{"budgets.tollgate.dev", "imagescans.tollgate.dev", "tollgateconfigs.tollgate.dev", "tollgateexceptions.tollgate.dev", "tollgateimagepolicies.tollgate.dev", "tollgatepolicies.tollgate.dev", "tollgateprofiles.tollgate.dev"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("tollgate.dev resources mismatch (-want +got):\n%s", diff)
		}
		if _, _, err := c.Kubectl(ctx, "get", "tollgatepolicies"); err != nil {
			t.Error(err)
		}
	})

	t.Run("kubectl apply from stdin", func(t *testing.T) {
		manifest := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-stdin\n  namespace: default\ndata:\n  greeting: hello\n"
		if _, _, err := c.KubectlWithStdin(ctx, manifest, "apply", "-f", "-"); err != nil {
			t.Fatal(err)
		}
		cm, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "from-stdin", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := cm.Data["greeting"]; got != "hello" {
			t.Errorf("ConfigMap data greeting = %q, want hello", got)
		}
	})

	t.Run("Deployment gets Pods", func(t *testing.T) {
		replicas := int32(2)
		labels := map[string]string{"app": "web"}
		dep, err := cs.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: appsv1.DeploymentSpec{
				Replicas: &replicas,
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{
						Name: "web", Image: "registry.k8s.io/pause:3.10",
					}}},
				},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				t.Fatal(err)
			}
			if len(pods.Items) == int(replicas) {
				for _, p := range pods.Items {
					owner := metav1.GetControllerOf(&p)
					if owner == nil || owner.Kind != "ReplicaSet" {
						t.Errorf("Pod %s is controlled by %v, want a ReplicaSet", p.Name, owner)
					}
				}
				return
			}
			if time.Now().After(deadline) {
				rss, _ := cs.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
				got, _ := cs.AppsV1().Deployments("default").Get(ctx, dep.Name, metav1.GetOptions{})
				t.Fatalf("Deployment web with %d replicas has %d Pods after 30s (%d ReplicaSets, status %+v); is kube-controller-manager running?",
					replicas, len(pods.Items), len(rss.Items), got.Status)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("CronJob accepted", func(t *testing.T) {
		_, err := cs.BatchV1().CronJobs("default").Create(ctx, &batchv1.CronJob{
			ObjectMeta: metav1.ObjectMeta{Name: "tick"},
			Spec: batchv1.CronJobSpec{
				Schedule: "* * * * *",
				JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
					Spec: corev1.PodSpec{
						RestartPolicy: corev1.RestartPolicyNever,
						Containers:    []corev1.Container{{Name: "tick", Image: "registry.k8s.io/pause:3.10"}},
					},
				}}},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := cs.BatchV1().CronJobs("default").Get(ctx, "tick", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.Schedule != "* * * * *" {
			t.Errorf("CronJob schedule = %q, want every minute", got.Spec.Schedule)
		}
	})

	t.Run("Stop leaves nothing behind", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("reads /proc")
		}
		children := childProcesses(t)
		var names []string
		var pids []int
		for pid, name := range children {
			names = append(names, name)
			pids = append(pids, pid)
		}
		slices.Sort(names)
		want := slices.Clone(controlPlaneNames)
		slices.Sort(want)
		if diff := cmp.Diff(want, names); diff != "" {
			t.Fatalf("control-plane children before Stop mismatch (-want +got):\n%s", diff)
		}

		stopped := time.Now()
		if err := c.Stop(); err != nil {
			t.Fatalf("Stop() = %v", err)
		}
		t.Logf("Stop took %s", time.Since(stopped).Round(time.Millisecond))
		waitGone(t, pids, 5*time.Second)
		if _, err := os.Stat(c.dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cluster directory %s still exists (stat: %v)", c.dir, err)
		}
		if err := c.Stop(); err != nil {
			t.Errorf("second Stop() = %v, want nil", err)
		}
		if _, err := os.Stat(kubeconfig); err != nil {
			t.Errorf("the kubeconfig asked for is gone after Stop: %v", err)
		}
		for _, name := range controlPlaneNames {
			if !strings.Contains(log.String(), "\n"+name+": ") {
				t.Errorf("Log holds no line from %s", name)
			}
		}
	})
}

// TestStartCleansUpOnFailure starts a real API server and a controller
// manager that fails at once: Start must report the failure with the
// controller manager's output and stop everything it started.
func TestStartCleansUpOnFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	defaults, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	for _, name := range []string{apiServerBinary, etcdBinary, kubectlBinary} {
		if err := os.Symlink(filepath.Join(defaults.BinDir, name), filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(bin, controllerManagerBinary), "#!/bin/sh\necho 'fake controller manager: refusing to start' >&2\nexit 3\n")
	if err := os.Chmod(filepath.Join(bin, controllerManagerBinary), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{BinDir: bin, ControllerManager: true, CRDDirs: []string{crdDir(t)}})
	if err == nil {
		_ = c.Stop()
		t.Fatal("Start() with a failing kube-controller-manager succeeded")
	}
	for _, want := range []string{"kube-controller-manager exited: exit status 3", "fake controller manager: refusing to start"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start() = %q, want it to mention %q", err, want)
		}
	}
	if children := childProcesses(t); len(children) > 0 {
		t.Errorf("control-plane processes left after a failed Start: %v", children)
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "tollgate-cluster-") {
			t.Errorf("cluster directory %s left after a failed Start", e.Name())
		}
	}
}

// crdDir returns the chart's CRD directory.
func crdDir(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := repoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "charts", "tollgate", "crds")
}

// fakeBinDir returns a directory holding an executable file per name.
func fakeBinDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// childProcesses returns the children of the test binary that run a
// control-plane binary, by PID.
func childProcesses(t *testing.T) map[int]string {
	t.Helper()
	procs, err := proc.Processes()
	if err != nil {
		t.Fatal(err)
	}
	self := os.Getpid()
	children := map[int]string{}
	for pid, p := range procs {
		if p.PPID == self && slices.Contains(controlPlaneNames, p.Name) {
			children[pid] = p.Name
		}
	}
	return children
}

// waitGone fails the test unless every process in pids has exited and been
// reaped within timeout.
func waitGone(t *testing.T, pids []int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, pid := range pids {
		for {
			err := syscall.Kill(pid, 0)
			if errors.Is(err, syscall.ESRCH) {
				break
			}
			if time.Now().After(deadline) {
				cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				t.Errorf("process %d (%s) still exists (kill 0: %v)", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}), err)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// listeningAddrs returns the TCP addresses each process listens on, keyed
// by the process name, read from /proc/<pid>/fd and /proc/net/tcp{,6}.
func listeningAddrs(t *testing.T, procs map[int]string) map[string][]string {
	t.Helper()
	inodes := map[string]string{} // socket inode → process name
	for pid, name := range procs {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, fd := range fds {
			target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if inode, ok := strings.CutPrefix(target, "socket:["); err == nil && ok {
				inodes[strings.TrimSuffix(inode, "]")] = name
			}
		}
	}
	addrs := map[string][]string{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" { // 0A: LISTEN
				continue
			}
			if name, ok := inodes[f[9]]; ok {
				addrs[name] = append(addrs[name], decodeProcAddr(t, f[1]))
			}
		}
	}
	return addrs
}

// decodeProcAddr turns /proc/net/tcp's "0100007F:1F90" into
// "127.0.0.1:8080": the address is in host byte order, 32 bits at a time.
func decodeProcAddr(t *testing.T, s string) string {
	t.Helper()
	hexIP, hexPort, _ := strings.Cut(s, ":")
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		t.Fatalf("parsing %q: %v", s, err)
	}
	var ip []byte
	for i := 0; i+8 <= len(hexIP); i += 8 {
		word, err := strconv.ParseUint(hexIP[i:i+8], 16, 32)
		if err != nil {
			t.Fatalf("parsing %q: %v", s, err)
		}
		ip = append(ip, byte(word), byte(word>>8), byte(word>>16), byte(word>>24))
	}
	if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
		t.Fatalf("parsing %q: unexpected address length", s)
	}
	return net.JoinHostPort(net.IP(ip).String(), strconv.FormatUint(port, 10))
}
