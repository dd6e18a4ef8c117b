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


def test_only_loopback_and_wildcard_listeners_take_a_port_from_the_environment():
    assert procs._local_or_any("0100007F")  # 127.0.0.1
    assert procs._local_or_any("00000000")  # 0.0.0.0
    assert not procs._local_or_any("01C2CE0A")  # 10.206.194.1 (a relay address)
    assert procs._local_or_any("00000000000000000000000001000000")  # ::1
    assert procs._local_or_any("0000000000000000FFFF00000100007F")  # ::ffff:127.0.0.1
    assert not procs._local_or_any("0000000000000000FFFF000001C2CE0A")
