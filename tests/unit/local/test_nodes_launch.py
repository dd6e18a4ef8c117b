import subprocess
import sys
import time

from kosmos.local.nodes import launch
from kosmos.local.nodes.layout import NodeDirs

SLEEPER = sys.executable


def test_wrapper_joins_the_cgroups_before_entering_the_namespaces_and_execs():
    command = launch.Command("kubelet", ("/bin/kubelet", "--config=/x"))
    argv = launch.wrapper(command, ["/cg/a/cgroup.procs", "/cg/b/cgroup.procs"], ["nsenter", "--"])
    assert argv[:2] == ["sh", "-c"]
    assert 'for f in /cg/a/cgroup.procs /cg/b/cgroup.procs; do echo $$ > "$f"; done' in argv[2]
    assert argv[2].endswith('exec "$@"')
    assert argv[3:] == ["sh", "nsenter", "--", "/bin/kubelet", "--config=/x"]


def test_a_started_process_is_found_by_its_pid_file_and_a_dead_one_is_not(tmp_path, monkeypatch):
    monkeypatch.setenv("KOSMOS_LOCAL_DIR", str(tmp_path))
    dirs = NodeDirs("n1")
    dirs.create()
    marker = dirs.etc / "sleep.conf"
    command = launch.Command("sleeper", (SLEEPER, "-c", "import time; time.sleep(30)", str(marker)))
    pid = launch.start(dirs, command, [], [])
    try:
        deadline = time.monotonic() + 5
        while launch.pid_of(dirs, command) != pid and time.monotonic() < deadline:
            time.sleep(0.02)  # until sh has exec'd sleep
        assert launch.pid_of(dirs, command) == pid
        assert launch.start(dirs, command, [], []) == pid, "a running process is kept"
        other = launch.Command("sleeper", (SLEEPER, "-c", "pass", "/elsewhere"))
        assert not launch.running_as(pid, other, "/elsewhere/nodes/"), "not ours by its arguments"
    finally:
        launch.kill({pid})
    deadline = time.monotonic() + 5
    while not launch.exited(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert launch.pid_of(dirs, command) is None


def test_output_raises_with_stderr_and_quiet_ok_says_false():
    argv = [sys.executable, "-c", "import sys; sys.stderr.write('nope'); sys.exit(3)"]
    try:
        launch.output(argv)
    except RuntimeError as exc:
        assert "nope" in str(exc)
    else:
        raise AssertionError("no error")
    assert not launch.quiet_ok(argv)
    assert launch.quiet_ok([sys.executable, "-c", "pass"])
    assert subprocess.run(["true"], check=False).returncode == 0


def test_tail_of_a_missing_or_empty_log_says_so(tmp_path):
    assert "does not exist" in launch.tail(tmp_path / "none.log")
    (tmp_path / "e.log").write_text("")
    assert "is empty" in launch.tail(tmp_path / "e.log")
    (tmp_path / "l.log").write_text("".join(f"line {i}\n" for i in range(30)))
    assert launch.tail(tmp_path / "l.log", 2) == "line 28\nline 29"
