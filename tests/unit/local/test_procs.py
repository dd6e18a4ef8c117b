import os
import socket
import subprocess
import sys
import time

from kosmos.local import procs


def test_listening_ports_finds_a_socket_owned_by_this_process():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert procs.listening_ports([os.getpid()])[port] == os.getpid()
    assert port not in procs.listening_ports([os.getpid()])


def test_processes_under_finds_by_command_line_and_terminate_stops_them(tmp_path):
    marker = tmp_path / "marker"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(marker)])
    try:
        deadline = time.monotonic() + 5
        found = procs.processes_under(tmp_path)
        while not found and time.monotonic() < deadline:  # until the child has exec'd
            time.sleep(0.01)
            found = procs.processes_under(tmp_path)
        assert [p.pid for p in found] == [child.pid]
        procs.terminate([child.pid], grace=5)
        child.wait(timeout=5)
        assert procs.processes_under(tmp_path) == []
    finally:
        child.kill()
