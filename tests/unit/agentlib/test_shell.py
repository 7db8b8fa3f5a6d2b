"""The shell runner takes argv lists only and reports what failed and why."""

import pytest

from agentlib import shell


def test_argv_is_passed_verbatim_not_through_a_shell():
    r = shell.run(["printf", "%s|", "a b", "$(id)", ";reboot"])
    assert r.stdout == "a b|$(id)|;reboot|"


def test_string_command_is_refused():
    with pytest.raises(TypeError, match="argv list"):
        shell.run("echo hi")


def test_failure_carries_argv_rc_and_stderr():
    with pytest.raises(shell.CommandFailed) as err:
        shell.run(["sh", "-c", "echo bad thing >&2; exit 3"])
    assert err.value.result.rc == 3
    assert "exit code 3" in str(err.value) and "bad thing" in str(err.value)
    assert "sh -c" in str(err.value)


def test_timeout_and_missing_binary():
    with pytest.raises(shell.CommandFailed, match="timed out after 0.2s"):
        shell.run(["sleep", "5"], timeout=0.2)
    with pytest.raises(shell.CommandFailed, match="could not start"):
        shell.run(["/nonexistent/tool"])


def test_check_false_returns_the_result():
    assert shell.run(["false"], check=False).rc == 1
