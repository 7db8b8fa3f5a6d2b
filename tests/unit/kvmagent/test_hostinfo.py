"""Parsing /proc/cpuinfo and os-release."""

from kvmagent.drivers.hostinfo import cpu_info, os_release

CPUINFO = """processor\t: 0
physical id\t: 0
model name\t: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz
cpu MHz\t\t: 2399.998
flags\t\t: fpu vme vmx sse2

processor\t: 1
physical id\t: 1
model name\t: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz
cpu MHz\t\t: 2600.010
flags\t\t: fpu vme vmx sse2
"""


def test_cpu_info_counts_cpus_sockets_speed_and_flag():
    info = cpu_info(CPUINFO)
    assert (info.count, info.sockets, info.speed_mhz) == (2, 2, 2600)
    assert info.model.startswith("Intel(R) Xeon(R)") and info.hvm_flag == "vmx"
    amd = cpu_info(CPUINFO.replace("vmx", "svm"))
    assert amd.hvm_flag == "svm"
    assert cpu_info(CPUINFO.replace(" vmx", "")).hvm_flag == ""


def test_os_release(tmp_path):
    f = tmp_path / "os-release"
    f.write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n')
    assert os_release(str(f)) == ("debian", "12")
